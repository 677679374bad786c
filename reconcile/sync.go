package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gitgate/gitgate/internal/pool"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldManager is the server-side apply field manager of everything gitgate applies.
const FieldManager = "gitgate"

// Phase is an app's sync state.
type Phase string

const (
	// Synced: the cluster holds what Git says at Revision.
	Synced Phase = "Synced"
	// OutOfSync: something differs and was not (or could not be) applied: a conflict with
	// another field manager, objects left to prune, drift without selfHeal.
	OutOfSync Phase = "OutOfSync"
	// Blocked: a render error or an Enforce violation; nothing of the app was touched.
	Blocked Phase = "Blocked"
	// Failed: the API server refused or could not be reached.
	Failed Phase = "Error"
)

// Ref names one object.
type Ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Fingerprint, in the inventory only, is what gitgate last applied (a hash of the
	// object) and the fields the API server then recorded as gitgate's. While both still
	// match, the object is unchanged and needs no dry-run to tell.
	Fingerprint string `json:"fingerprint,omitempty"`
}

func refOf(u *unstructured.Unstructured) Ref {
	return Ref{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

// key identifies an object independent of its API version.
func (r Ref) key() string {
	gv, _ := schema.ParseGroupVersion(r.APIVersion)
	return gv.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

func (r Ref) String() string { return policy.FormatID(r.Kind, r.Namespace, r.Name) }

func (r Ref) object() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(r.APIVersion)
	u.SetKind(r.Kind)
	u.SetNamespace(r.Namespace)
	u.SetName(r.Name)
	return u
}

// Action is what a sync did to one object.
type Action string

const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Pruned     Action = "pruned"
	Conflict   Action = "conflict"
	Drifted    Action = "drifted" // differs, left as is (no selfHeal on a resync)
	Errored    Action = "error"
	KeptPrune  Action = "not-pruned"
)

// ObjectResult is one object of a sync.
type ObjectResult struct {
	Ref     Ref         `json:"ref"`
	Action  Action      `json:"action"`
	Message string      `json:"message,omitempty"`
	Diffs   []FieldDiff `json:"diffs,omitempty"`
}

// AppResult is one app's sync.
type AppResult struct {
	App string `json:"app"`
	// Cluster is the app's destination cluster, in a sync across clusters.
	Cluster  string         `json:"cluster,omitempty"`
	Phase    Phase          `json:"phase"`
	Revision string         `json:"revision"`
	Objects  []ObjectResult `json:"objects,omitempty"`
	// Findings are the gate's findings on the rendered objects (blocking and warnings).
	Findings []policy.Result `json:"findings,omitempty"`
	Error    string          `json:"error,omitempty"`
	Notices  []string        `json:"notices,omitempty"`
	// Writes counts the API writes the sync made (applies, deletes, inventory updates).
	Writes   int           `json:"writes"`
	Duration time.Duration `json:"duration"`
	// Render, Gate and Apply split Duration (Apply includes the comparisons and prune).
	Render time.Duration `json:"render"`
	Gate   time.Duration `json:"gate"`
	Apply  time.Duration `json:"apply"`
}

// Count is how many objects had the action.
func (r AppResult) Count(a Action) int {
	n := 0
	for _, o := range r.Objects {
		if o.Action == a {
			n++
		}
	}
	return n
}

// SyncResult is one sync run over every app.
type SyncResult struct {
	Revision string      `json:"revision"`
	Apps     []AppResult `json:"apps"`
	Errors   []string    `json:"errors,omitempty"`
	// Clusters, in a sync across clusters, is each cluster's status.
	Clusters []ClusterStatus `json:"clusters,omitempty"`
}

// ExitCode is 2 when an app failed (the API server unreachable or refusing, a field
// conflict left unresolved) or discovery failed, 1 when one was blocked, else 0.
func (r *SyncResult) ExitCode() int {
	code := 0
	if len(r.Errors) > 0 {
		return 2
	}
	for _, a := range r.Apps {
		if a.Phase == Failed || a.Count(Conflict) > 0 {
			return 2
		}
		if a.Phase == Blocked {
			code = 1
		}
	}
	return code
}

// Options configure a Syncer.
type Options struct {
	// InventoryNamespace holds the inventory ConfigMaps (default gitgate-system).
	InventoryNamespace string
	// ForceConflicts takes over fields other field managers own.
	ForceConflicts bool
	// Prune deletes objects no longer in Git even when the app's syncPolicy does not say so.
	Prune bool
	// CreateNamespace creates missing destination namespaces for every app.
	CreateNamespace bool
	// Resync marks a periodic run: an app without selfHeal whose revision did not change
	// is compared, not re-applied.
	Resync bool
	// Workers sync apps in parallel (default 4).
	Workers int
	// IgnoreManagers own fields that never count as drift (default: kube-controller-manager,
	// which scales for a HorizontalPodAutoscaler).
	IgnoreManagers []string
	// Check configures the gate. With Check.CRDs set, a sync also adds the CRDs the
	// cluster serves to it (the repository's win), so a custom resource the API server
	// would reject blocks its app before anything of it is applied.
	Check policy.CheckOptions
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultOptions are the options gitgate sync starts from.
func DefaultOptions() Options {
	return Options{
		InventoryNamespace: "gitgate-system",
		Workers:            4,
		IgnoreManagers:     []string{"kube-controller-manager"},
		Check:              policy.CheckOptions{Workers: 2, MaxFileSize: policy.DefaultMaxFileSize, Schema: true},
		Now:                time.Now,
	}
}

// Syncer applies apps behind the gate.
type Syncer struct {
	Client client.Client
	Gate   *policy.Gate
	Opts   Options
}

// Sync renders, gates and applies every app; apps run in parallel, one failing never
// stops the others.
func (s *Syncer) Sync(ctx context.Context, repo render.Repo, revision string, apps []App) *SyncResult {
	res := &SyncResult{Revision: revision, Apps: make([]AppResult, len(apps))}
	if err := s.ensureNamespace(ctx, s.Opts.InventoryNamespace, new(int)); err != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("inventory namespace %s: %v", s.Opts.InventoryNamespace, err))
		for i, a := range apps {
			res.Apps[i] = AppResult{App: a.Name, Phase: Failed, Revision: revision, Error: err.Error()}
		}
		return res
	}
	crdErr := addLiveCRDs(ctx, s.Client, s.Opts.Check.CRDs)
	// Every app gets a result: SyncApp itself reports a cancelled context.
	pool.ForEach(context.Background(), len(apps), s.Opts.Workers, func(i int) {
		res.Apps[i] = s.SyncApp(ctx, repo, revision, apps[i])
		if crdErr != nil {
			res.Apps[i].Notices = append(res.Apps[i].Notices, crdErr.Error())
		}
	})
	return res
}

// Desired renders an app's targets: the objects to apply, sorted in apply order, and
// notices for what is left out (Argo CD hooks, Applications).
func Desired(ctx context.Context, repo render.Repo, app App) ([]policy.Resource, []string, error) {
	return desired(ctx, repo, app, render.Render)
}

// desired is Desired with each target's objects from renderTarget (render.Render, or a
// report's cache standing in for it: ReportCache).
func desired(ctx context.Context, repo render.Repo, app App, renderTarget func(context.Context, render.Repo, render.Target) ([]policy.Resource, error)) ([]policy.Resource, []string, error) {
	var out []policy.Resource
	var notices []string
	for _, t := range app.Targets {
		rs, err := renderTarget(ctx, repo, t)
		if err != nil {
			return nil, nil, fmt.Errorf("render %s: %w", t, err)
		}
		for _, r := range rs {
			if r.Object == nil || r.Object.GetKind() == "" || r.Object.GetName() == "" {
				continue
			}
			if g := r.Object.GroupVersionKind().Group; g == "argoproj.io" {
				notices = append(notices, fmt.Sprintf("%s: %s is Argo CD's own object; not applied", r.Origin, r.ID()))
				continue
			}
			if _, ok := r.Object.GetAnnotations()["argocd.argoproj.io/hook"]; ok {
				notices = append(notices, fmt.Sprintf("%s: %s is an Argo CD hook; not applied", r.Origin, r.ID()))
				continue
			}
			if r.Object.GetKind() == "Namespace" || policy.ClusterScoped(r.Object.GetKind()) {
				r.Object.SetNamespace("")
			} else if r.Object.GetNamespace() == "" && app.Namespace != "" {
				r.Object.SetNamespace(app.Namespace)
			}
			out = append(out, r)
		}
	}
	sortApply(out)
	return out, notices, nil
}

func (s *Syncer) now() time.Time {
	if s.Opts.Now != nil {
		return s.Opts.Now()
	}
	return time.Now()
}

// SyncApp renders, gates and applies one app. A render error or an Enforce violation
// blocks it before anything is touched.
func (s *Syncer) SyncApp(ctx context.Context, repo render.Repo, revision string, app App) (res AppResult) {
	start := time.Now()
	res = AppResult{App: app.Name, Revision: revision, Phase: Synced}
	defer func() { res.Duration = time.Since(start) }()
	inv, err := s.readInventory(ctx, app.Name)
	if err != nil {
		res.Phase, res.Error = Failed, err.Error()
		return res
	}
	store := func(st storedStatus) {
		st.Phase, st.Revision = res.Phase, revision
		if err := s.writeInventory(ctx, app.Name, inv, append([]Ref(nil), inv.Objects...), st, &res.Writes); err != nil {
			res.Notices = append(res.Notices, err.Error())
		}
	}
	t0 := time.Now()
	desired, notices, err := Desired(ctx, repo, app)
	res.Render = time.Since(t0)
	res.Notices = append(res.Notices, notices...)
	if err != nil {
		res.Phase, res.Error = Blocked, err.Error()
		store(storedStatus{LastError: res.Error})
		return res
	}
	t0 = time.Now()
	rep := s.Gate.CheckResources(ctx, desired, s.Opts.Check)
	res.Gate = time.Since(t0)
	t0 = time.Now()
	defer func() { res.Apply = time.Since(t0) }()
	blocking := 0
	for _, r := range rep.Results {
		if r.Finding() {
			res.Findings = append(res.Findings, r)
		}
		if r.Blocking() {
			blocking++
		}
	}
	for _, e := range rep.Errors {
		res.Notices = append(res.Notices, e.Error())
		blocking++
	}
	if blocking > 0 {
		res.Phase = Blocked
		res.Error = fmt.Sprintf("%d enforced policy violation(s); nothing applied", blocking)
		store(storedStatus{LastError: res.Error})
		return res
	}

	healing := !s.Opts.Resync || app.SelfHeal || inv.Status.Revision != revision || inv.Status.Phase != Synced
	force := s.Opts.ForceConflicts || app.SelfHeal
	var ignoreManagers []string
	ignoreManagers = append(ignoreManagers, s.Opts.IgnoreManagers...)
	wanted := map[string]bool{}
	var applied []Ref
	changed := false
	fail := func(err error) AppResult {
		res.Phase, res.Error = Failed, err.Error()
		// Keep every object applied so far, and every old one, in the inventory.
		objs := mergeRefs(inv.Objects, applied)
		st := storedStatus{Phase: Failed, Revision: revision, LastError: res.Error}
		if werr := s.writeInventory(ctx, app.Name, inv, objs, st, &res.Writes); werr != nil {
			res.Notices = append(res.Notices, werr.Error())
		}
		return res
	}
	if app.CreateNamespace || s.Opts.CreateNamespace {
		nss := map[string]bool{app.Namespace: true}
		for _, r := range desired {
			if ns := r.Object.GetNamespace(); ns != "" {
				nss[ns] = true
			}
		}
		for ns := range nss {
			if err := s.ensureNamespace(ctx, ns, &res.Writes); err != nil {
				return fail(fmt.Errorf("%s: %w", app, err))
			}
		}
	}
	stored := map[string]string{}
	for _, old := range inv.Objects {
		stored[old.key()] = old.Fingerprint
	}
	for _, r := range desired {
		obj := r.Object
		s.scope(obj)
		ref := refOf(obj)
		wanted[ref.key()] = true
		or, fp, wrote, err := s.applyOne(ctx, app, obj, stored[ref.key()], healing, force, ignoreManagers)
		if or.Action == Created || or.Action == Configured || or.Action == Unchanged || or.Action == Drifted || or.Action == Conflict {
			ref.Fingerprint = fp
			applied = append(applied, ref)
		}
		res.Writes += wrote
		if wrote > 0 {
			changed = true
		}
		if err != nil {
			or.Action, or.Message = Errored, err.Error()
			res.Objects = append(res.Objects, or)
			if isUnreachable(err) {
				return fail(fmt.Errorf("%s: %s: %w", app, ref, err))
			}
			res.Phase = Failed
			if res.Error == "" {
				res.Error = fmt.Sprintf("%s: %v", ref, err)
			}
			continue
		}
		if obj.GetKind() == "CustomResourceDefinition" && (or.Action == Created || or.Action == Configured) {
			if err := s.waitEstablished(ctx, obj.GetName()); err != nil {
				or.Message = err.Error()
			}
		}
		res.Objects = append(res.Objects, or)
		if or.Action == Conflict || or.Action == Drifted {
			if res.Phase == Synced {
				res.Phase = OutOfSync
			}
		}
	}
	// Prune: objects of the inventory that Git no longer has, and only those.
	keep := applied
	for _, old := range inv.Objects {
		if wanted[old.key()] {
			continue
		}
		if !(app.Prune || s.Opts.Prune) {
			res.Objects = append(res.Objects, ObjectResult{Ref: old, Action: KeptPrune, Message: "no longer in Git; the app's syncPolicy does not prune (use --prune)"})
			keep = append(keep, old)
			if res.Phase == Synced {
				res.Phase = OutOfSync
			}
			continue
		}
		or, wrote, err := s.pruneOne(ctx, old)
		res.Writes += wrote
		if wrote > 0 {
			changed = true
		}
		if err != nil {
			keep = append(keep, old)
			or.Action, or.Message = Errored, err.Error()
			res.Objects = append(res.Objects, or)
			if isUnreachable(err) {
				return fail(fmt.Errorf("%s: prune %s: %w", app, old, err))
			}
			res.Phase = Failed
			if res.Error == "" {
				res.Error = fmt.Sprintf("prune %s: %v", old, err)
			}
			continue
		}
		res.Objects = append(res.Objects, or)
	}
	st := storedStatus{Phase: res.Phase, Revision: revision, LastError: res.Error}
	if changed {
		st.LastApplied = s.now().UTC().Format(time.RFC3339)
	}
	if c := res.Count(Conflict); c > 0 {
		st.Message = fmt.Sprintf("%d object(s) in conflict with another field manager; --force-conflicts takes them over", c)
	}
	if err := s.writeInventory(ctx, app.Name, inv, keep, st, &res.Writes); err != nil {
		return fail(err)
	}
	return res
}

// scope fixes an object's namespace by what the API server says of its kind: a namespaced
// object without one goes to "default" (as kubectl applies it), a cluster-scoped one loses
// the destination namespace render gave it. Kinds the server does not know (yet) are left.
func (s *Syncer) scope(obj *unstructured.Unstructured) {
	namespaced, err := s.Client.IsObjectNamespaced(obj)
	if err != nil {
		return
	}
	switch {
	case namespaced && obj.GetNamespace() == "":
		obj.SetNamespace("default")
	case !namespaced && obj.GetNamespace() != "":
		obj.SetNamespace("")
	}
}

// waitEstablished waits (up to 30 s) until the API server serves a CRD just applied, so
// objects of it later in the same sync find their kind.
func (s *Syncer) waitEstablished(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	for {
		if err := s.Client.Get(ctx, client.ObjectKey{Name: name}, crd); err == nil {
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CustomResourceDefinition %s is not established after 30s", name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func mergeRefs(a, b []Ref) []Ref {
	seen := map[string]bool{}
	var out []Ref
	for _, l := range [][]Ref{a, b} {
		for _, r := range l {
			if !seen[r.key()] {
				seen[r.key()] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// isUnreachable reports errors that make every further request of the run pointless.
func isUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "EOF") || strings.Contains(msg, "no such host") || strings.Contains(msg, "i/o timeout")
}
