package reconcile

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/gitgate/gitgate/internal/pool"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// State is how a live object stands against Git.
type State string

const (
	InSync   State = "InSync"
	Missing  State = "Missing"  // in Git, not in the cluster
	Modified State = "Modified" // differs from Git
	Extra    State = "Extra"    // in the app's inventory, no longer in Git, still in the cluster
)

// ObjectDrift is one object of the drift report.
type ObjectDrift struct {
	Ref   Ref         `json:"ref"`
	State State       `json:"state"`
	Diffs []FieldDiff `json:"diffs,omitempty"`
	// Violations are the policy findings on the live object.
	Violations []policy.Result `json:"violations,omitempty"`
	// DriftViolates marks drift that breaks a policy Git's version passes.
	DriftViolates bool   `json:"driftViolates,omitempty"`
	Error         string `json:"error,omitempty"`
}

// Blocking reports whether the live object fails an Enforce rule.
func (o ObjectDrift) Blocking() bool {
	for _, v := range o.Violations {
		if v.Blocking() {
			return true
		}
	}
	return false
}

// AppDrift is one app of the drift report.
type AppDrift struct {
	App string `json:"app"`
	// Cluster is the app's destination cluster, in a report across clusters.
	Cluster   string        `json:"cluster,omitempty"`
	Namespace string        `json:"namespace,omitempty"`
	Revision  string        `json:"revision"`
	Objects   []ObjectDrift `json:"objects"`
	// Status is the last sync's status stored in the cluster, if any.
	LastSync *storedStatus `json:"lastSync,omitempty"`
	Error    string        `json:"error,omitempty"`
	Notices  []string      `json:"notices,omitempty"`
}

// Counts are an app's objects by state, and the violating ones.
type Counts struct {
	InSync, Missing, Modified, Extra, Violating, DriftViolating, Errors int
}

// Counts tallies the app.
func (a AppDrift) Counts() Counts {
	var c Counts
	for _, o := range a.Objects {
		switch o.State {
		case InSync:
			c.InSync++
		case Missing:
			c.Missing++
		case Modified:
			c.Modified++
		case Extra:
			c.Extra++
		}
		if o.Blocking() {
			c.Violating++
		}
		if o.DriftViolates {
			c.DriftViolating++
		}
		if o.Error != "" {
			c.Errors++
		}
	}
	return c
}

// Drifted is true when anything differs from Git.
func (c Counts) Drifted() bool { return c.Missing+c.Modified+c.Extra > 0 }

// DriftReport is the drift-and-policy report of a cluster against Git.
type DriftReport struct {
	Revision  string     `json:"revision"`
	Generated time.Time  `json:"generated"`
	Apps      []AppDrift `json:"apps"`
	Errors    []string   `json:"errors,omitempty"`
	// Clusters, in a report across clusters, is each cluster's status (Synced: in sync
	// and no enforced violation; OutOfSync: drift or violations; Failed: errors).
	Clusters []ClusterStatus `json:"clusters,omitempty"`
}

// ExitCode is 2 when the report is incomplete, 1 on drift or live Enforce violations, else 0.
func (r *DriftReport) ExitCode() int {
	if len(r.Errors) > 0 {
		return 2
	}
	code := 0
	for _, a := range r.Apps {
		c := a.Counts()
		if a.Error != "" || c.Errors > 0 {
			return 2
		}
		if c.Drifted() || c.Violating > 0 {
			code = 1
		}
	}
	return code
}

// Reporter compares live objects with Git.
type Reporter struct {
	Client client.Client
	Gate   *policy.Gate
	Opts   Options
}

// Report builds the drift report of every app, apps in parallel.
func (rp *Reporter) Report(ctx context.Context, repo render.Repo, revision string, apps []App) *DriftReport {
	rep := &DriftReport{Revision: revision, Generated: time.Now().UTC(), Apps: make([]AppDrift, len(apps))}
	if rp.Opts.Now != nil {
		rep.Generated = rp.Opts.Now().UTC()
	}
	crdErr := addLiveCRDs(ctx, rp.Client, rp.Opts.Check.CRDs)
	// Every app gets an entry: ReportApp itself reports a cancelled context.
	pool.ForEach(context.Background(), len(apps), rp.Opts.Workers, func(i int) {
		rep.Apps[i] = rp.ReportApp(ctx, repo, revision, apps[i])
		if crdErr != nil {
			rep.Apps[i].Notices = append(rep.Apps[i].Notices, crdErr.Error())
		}
	})
	return rep
}

// ReportApp compares one app's rendered objects with the live ones.
func (rp *Reporter) ReportApp(ctx context.Context, repo render.Repo, revision string, app App) AppDrift {
	ad := AppDrift{App: app.Name, Namespace: app.Namespace, Revision: revision}
	s := &Syncer{Client: rp.Client, Gate: rp.Gate, Opts: rp.Opts}
	inv, err := s.readInventory(ctx, app.Name)
	if err != nil {
		ad.Error = err.Error()
		return ad
	}
	if inv.exists {
		st := inv.Status
		ad.LastSync = &st
	}
	desired, notices, err := Desired(ctx, repo, app)
	ad.Notices = notices
	if err != nil {
		ad.Error = err.Error()
		return ad
	}
	// What Git's version of each object gets from the gate, to tell drift that breaks
	// policy from objects that never passed.
	gitFails := map[string]bool{}
	for _, r := range rp.Gate.CheckResources(ctx, desired, rp.Opts.Check).Results {
		if r.Blocking() {
			gitFails[r.ResourceID()+"|"+r.Policy+"/"+r.Rule] = true
		}
	}
	var lives []policy.Resource
	liveIdx := map[int]int{} // live resource -> object index
	wanted := map[string]bool{}
	for _, r := range desired {
		obj := r.Object
		s.scope(obj)
		ref := refOf(obj)
		wanted[ref.key()] = true
		od := ObjectDrift{Ref: ref}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(obj.GroupVersionKind())
		err := rp.Client.Get(ctx, client.ObjectKeyFromObject(obj), live)
		switch {
		case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
			od.State = Missing
		case err != nil:
			od.State, od.Error = Modified, err.Error()
		default:
			diffs, _, err := s.dryRun(ctx, app, obj, live, true, rp.Opts.IgnoreManagers)
			if err != nil {
				od.Error = err.Error()
			}
			od.Diffs = diffs
			od.State = InSync
			if len(diffs) > 0 || err != nil {
				od.State = Modified
			}
			liveIdx[len(lives)] = len(ad.Objects)
			lives = append(lives, liveResource(live, app.Name))
		}
		ad.Objects = append(ad.Objects, od)
	}
	for _, old := range inv.Objects {
		if wanted[old.key()] {
			continue
		}
		live := old.object()
		err := rp.Client.Get(ctx, client.ObjectKeyFromObject(live), live)
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			continue
		}
		od := ObjectDrift{Ref: old, State: Extra}
		if err != nil {
			od.Error = err.Error()
		} else {
			liveIdx[len(lives)] = len(ad.Objects)
			lives = append(lives, liveResource(live, app.Name))
		}
		ad.Objects = append(ad.Objects, od)
	}
	// Policy on the live objects.
	if len(lives) > 0 {
		idx := map[string]int{}
		for i, l := range lives {
			idx[refOf(l.Object).String()] = liveIdx[i]
		}
		for _, r := range rp.Gate.CheckResources(ctx, lives, rp.Opts.Check).Results {
			if !r.Finding() {
				continue
			}
			i, ok := idx[r.ResourceID()]
			if !ok {
				continue
			}
			o := &ad.Objects[i]
			o.Violations = append(o.Violations, r)
			if r.Blocking() && o.State != InSync && !gitFails[r.ResourceID()+"|"+r.Policy+"/"+r.Rule] {
				o.DriftViolates = true
			}
		}
	}
	sort.SliceStable(ad.Objects, func(i, j int) bool {
		return stateRank(ad.Objects[i]) < stateRank(ad.Objects[j])
	})
	return ad
}

func stateRank(o ObjectDrift) int {
	switch {
	case o.DriftViolates:
		return 0
	case o.State != InSync && o.Blocking():
		return 1
	case o.State != InSync:
		return 2
	case o.Blocking():
		return 3
	}
	return 4
}

// liveResource is a live object as the gate sees it: without server-owned metadata,
// Secret data masked (findings quote values).
func liveResource(live *unstructured.Unstructured, app string) policy.Resource {
	c := (&unstructured.Unstructured{Object: policy.MaskSecret(live.Object)}).DeepCopy()
	unstructured.RemoveNestedField(c.Object, "metadata", "managedFields")
	return policy.Resource{Object: c, Origin: policy.Origin{File: fmt.Sprintf("cluster:%s", refOf(live)), Target: app}}
}
