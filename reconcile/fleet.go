package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
)

// Fleet syncs and reports apps on their destination clusters: each app goes to the
// cluster its Application's destination names (Clusters.Resolve), its inventory lives
// there, and a cluster that cannot be reached fails its own apps only. Clusters run in
// parallel, each with Opts.Workers apps at a time.
type Fleet struct {
	Clusters *Clusters
	Gate     *policy.Gate
	Opts     Options
	// Cache (nil: none) stands in for rendering and judging Git's side of a report.
	Cache ReportCache
}

// errNoCredentials is a cluster named (in .gitgate.yaml, without a context) that nothing
// gives credentials for.
var errNoCredentials = errors.New("no credentials: give it a context: in .gitgate.yaml's clusters, or an Argo CD cluster Secret in the --cluster-secrets namespace")

// split groups apps by cluster. multi is false when every app is on the local cluster
// and no other is defined: the result is then exactly a one-cluster sync's.
func (f *Fleet) split(apps []App) (byCluster [][]int, failed map[int]error, multi bool) {
	of, errs := f.Clusters.group(apps)
	byCluster = make([][]int, len(f.Clusters.List))
	failed = map[int]error{}
	for i := range apps {
		if of[i] < 0 {
			failed[i] = errs[i]
			continue
		}
		byCluster[of[i]] = append(byCluster[of[i]], i)
	}
	return byCluster, failed, len(f.Clusters.List) > 1 || len(failed) > 0
}

func clusterErr(c *Cluster) error {
	if c.Err != nil {
		return c.Err
	}
	if c.Client == nil {
		return errors.Join(errors.New(c.String()), errNoCredentials)
	}
	return nil
}

func subset(apps []App, idx []int) []App {
	out := make([]App, len(idx))
	for k, i := range idx {
		out[k] = apps[i]
	}
	return out
}

// clusterOpts are the options of one cluster's Syncer or Reporter: its own CRD set,
// since the CRDs each cluster serves (and its apps render) validate its objects only.
func (f *Fleet) clusterOpts() Options {
	o := f.Opts
	o.Check.CRDs = o.Check.CRDs.Clone()
	return o
}

// Sync syncs every app to its cluster.
func (f *Fleet) Sync(ctx context.Context, repo render.Repo, revision string, apps []App) *SyncResult {
	byCluster, failed, multi := f.split(apps)
	res := &SyncResult{Revision: revision, Apps: make([]AppResult, len(apps))}
	for i, err := range failed {
		res.Apps[i] = AppResult{App: apps[i].Name, Phase: Failed, Revision: revision, Error: err.Error()}
	}
	status := make([]ClusterStatus, len(f.Clusters.List))
	var wg sync.WaitGroup
	for ci, c := range f.Clusters.List {
		status[ci] = ClusterStatus{Name: c.Name, Server: c.Server, From: c.From, Apps: len(byCluster[ci])}
		if len(byCluster[ci]) == 0 {
			continue
		}
		if err := clusterErr(c); err != nil {
			status[ci].Error = err.Error()
			for _, i := range byCluster[ci] {
				res.Apps[i] = AppResult{App: apps[i].Name, Phase: Failed, Revision: revision, Error: err.Error()}
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &Syncer{Client: c.Client, Gate: f.Gate, Opts: f.clusterOpts()}
			r := s.Sync(ctx, repo, revision, subset(apps, byCluster[ci]))
			for k, i := range byCluster[ci] {
				res.Apps[i] = r.Apps[k]
			}
			if multi {
				status[ci].Error = strings.Join(r.Errors, "; ")
			} else {
				res.Errors = r.Errors
			}
		}()
	}
	wg.Wait()
	if !multi {
		return res
	}
	for ci, c := range f.Clusters.List {
		for _, i := range byCluster[ci] {
			res.Apps[i].Cluster = c.Name
			switch res.Apps[i].Phase {
			case Synced:
				status[ci].Synced++
			case OutOfSync:
				status[ci].OutOfSync++
			case Blocked:
				status[ci].Blocked++
			default:
				status[ci].Failed++
			}
		}
	}
	if len(failed) > 0 {
		status = append(status, ClusterStatus{Name: unmatched, Apps: len(failed), Failed: len(failed), Error: "destination matches no cluster"})
		for i := range failed {
			res.Apps[i].Cluster = unmatched
		}
	}
	res.Clusters = status
	return res
}

// Report builds the drift report of every app against its cluster.
func (f *Fleet) Report(ctx context.Context, repo render.Repo, revision string, apps []App) *DriftReport {
	byCluster, failed, multi := f.split(apps)
	rep := &DriftReport{Revision: revision, Apps: make([]AppDrift, len(apps))}
	for i, err := range failed {
		rep.Apps[i] = AppDrift{App: apps[i].Name, Namespace: apps[i].Namespace, Revision: revision, Error: err.Error()}
	}
	status := make([]ClusterStatus, len(f.Clusters.List))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for ci, c := range f.Clusters.List {
		status[ci] = ClusterStatus{Name: c.Name, Server: c.Server, From: c.From, Apps: len(byCluster[ci])}
		if len(byCluster[ci]) == 0 {
			continue
		}
		if err := clusterErr(c); err != nil {
			status[ci].Error = err.Error()
			for _, i := range byCluster[ci] {
				rep.Apps[i] = AppDrift{App: apps[i].Name, Namespace: apps[i].Namespace, Revision: revision, Error: err.Error()}
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rp := &Reporter{Client: c.Client, Gate: f.Gate, Opts: f.clusterOpts(), Cache: f.Cache}
			r := rp.Report(ctx, repo, revision, subset(apps, byCluster[ci]))
			for k, i := range byCluster[ci] {
				rep.Apps[i] = r.Apps[k]
			}
			mu.Lock()
			rep.Generated = r.Generated
			rep.Errors = append(rep.Errors, r.Errors...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if rep.Generated.IsZero() {
		rep.Generated = (&Syncer{Opts: f.Opts}).now().UTC()
	}
	if !multi {
		return rep
	}
	for ci, c := range f.Clusters.List {
		for _, i := range byCluster[ci] {
			rep.Apps[i].Cluster = c.Name
			cnt := rep.Apps[i].Counts()
			switch {
			case rep.Apps[i].Error != "" || cnt.Errors > 0:
				status[ci].Failed++
			case cnt.Drifted() || cnt.Violating > 0:
				status[ci].OutOfSync++
			default:
				status[ci].Synced++
			}
		}
	}
	if len(failed) > 0 {
		status = append(status, ClusterStatus{Name: unmatched, Apps: len(failed), Failed: len(failed), Error: "destination matches no cluster"})
		for i := range failed {
			rep.Apps[i].Cluster = unmatched
		}
	}
	rep.Clusters = status
	return rep
}

// WritePolicyReports writes each app's PolicyReports to the cluster the app is on (the
// local one when the report is not across clusters).
func (f *Fleet) WritePolicyReports(ctx context.Context, rep *DriftReport) []error {
	var errs []error
	for i, c := range f.Clusters.List {
		sub := *rep
		sub.Apps = nil
		for _, a := range rep.Apps {
			if a.Cluster == c.Name || a.Cluster == "" && i == 0 {
				sub.Apps = append(sub.Apps, a)
			}
		}
		if len(sub.Apps) == 0 || c.Client == nil {
			continue
		}
		if err := WritePolicyReports(ctx, c.Client, PolicyReports(&sub)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c, err))
		}
	}
	return errs
}
