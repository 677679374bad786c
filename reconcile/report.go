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
	// Cache (nil: none) stands in for rendering and judging Git's side of an app.
	Cache ReportCache
}

// ReportCache stands in for Git's side of a report: what rendering an app's targets and
// judging its desired objects gave, kept by cmd/gitgate's verdict cache under the keys
// check gives the targets (reconcile imports neither). Nothing about the cluster goes
// through it: the dry-run applies, the live objects, their policy results and the drift
// are computed every time.
type ReportCache interface {
	// Render stands in for render.Render of one of an app's targets: the objects an
	// entry holds (render order, origins), or the target rendered, and stored when it
	// may be.
	Render(ctx context.Context, repo render.Repo, t render.Target) ([]policy.Resource, error)
	// Blocking returns the blocking findings of app's desired objects (GitFinding's
	// keys), judged by the same gate with the same options, when an entry knows them.
	Blocking(app App) ([]string, bool)
	// Judged is told of the gate's report on app's desired objects (judged afresh, the
	// judgement complete) and its blocking findings, to store them when they may be.
	Judged(app App, desired []policy.Resource, judged *policy.Report, blocking []string)
}

// GitFinding is the key of a blocking finding on Git's version of an object, to tell
// drift that breaks a policy from an object that never passed it.
func GitFinding(r policy.Result) string {
	return r.ResourceID() + "|" + r.Policy + "/" + r.Rule
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
	renderTarget := render.Render
	if rp.Cache != nil {
		renderTarget = rp.Cache.Render
	}
	desired, notices, err := desired(ctx, repo, app, renderTarget)
	ad.Notices = notices
	if err != nil {
		ad.Error = err.Error()
		return ad
	}
	// What Git's version of each object gets from the gate, to tell drift that breaks
	// policy from objects that never passed.
	gitFails := map[string]bool{}
	for _, k := range rp.gitBlocking(ctx, app, desired) {
		gitFails[k] = true
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
			if r.Blocking() && o.State != InSync && !gitFails[GitFinding(r)] {
				o.DriftViolates = true
			}
		}
	}
	sort.SliceStable(ad.Objects, func(i, j int) bool {
		return stateRank(ad.Objects[i]) < stateRank(ad.Objects[j])
	})
	return ad
}

// gitBlocking are the blocking findings (GitFinding) of app's desired objects: from the
// cache when it knows them, else judged (and told to the cache).
func (rp *Reporter) gitBlocking(ctx context.Context, app App, desired []policy.Resource) []string {
	if rp.Cache != nil {
		if known, ok := rp.Cache.Blocking(app); ok {
			return known
		}
	}
	judged := rp.Gate.CheckResources(ctx, desired, rp.Opts.Check)
	var out []string
	for _, r := range judged.Results {
		if r.Blocking() {
			out = append(out, GitFinding(r))
		}
	}
	if rp.Cache != nil && ctx.Err() == nil {
		rp.Cache.Judged(app, desired, judged, out)
	}
	return out
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
