package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/internal/pool"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	App      string         `json:"app"`
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
	// Check configures the gate.
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
	// Every app gets a result: SyncApp itself reports a cancelled context.
	pool.ForEach(context.Background(), len(apps), s.Opts.Workers, func(i int) {
		res.Apps[i] = s.SyncApp(ctx, repo, revision, apps[i])
	})
	return res
}

// Desired renders an app's targets: the objects to apply, sorted in apply order, and
// notices for what is left out (Argo CD hooks, Applications).
func Desired(ctx context.Context, repo render.Repo, app App) ([]policy.Resource, []string, error) {
	var out []policy.Resource
	var notices []string
	for _, t := range app.Targets {
		rs, err := render.Render(ctx, repo, t)
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

// kindOrder is Argo CD's order within a wave (the first kinds are applied first).
var kindOrder = func() map[string]int {
	m := map[string]int{}
	for i, k := range []string{"Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService"} {
		m[k] = i
	}
	return m
}()

func wave(u *unstructured.Unstructured) int {
	if w, ok := u.GetAnnotations()["argocd.argoproj.io/sync-wave"]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(w)); err == nil {
			return n
		}
	}
	return 0
}

// sortApply orders Namespaces and CRDs first, then by sync wave, then by kind.
func sortApply(rs []policy.Resource) {
	phase := func(u *unstructured.Unstructured) int {
		switch u.GetKind() {
		case "Namespace":
			return 0
		case "CustomResourceDefinition":
			return 1
		}
		return 2
	}
	ko := func(k string) int {
		if n, ok := kindOrder[k]; ok {
			return n
		}
		return len(kindOrder)
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i].Object, rs[j].Object
		if pa, pb := phase(a), phase(b); pa != pb {
			return pa < pb
		}
		if wa, wb := wave(a), wave(b); wa != wb {
			return wa < wb
		}
		if ka, kb := ko(a.GetKind()), ko(b.GetKind()); ka != kb {
			return ka < kb
		}
		return a.GetNamespace()+"/"+a.GetName() < b.GetNamespace()+"/"+b.GetName()
	})
}

// inventory is what the cluster remembers of an app.
type inventory struct {
	Objects []Ref
	Status  storedStatus
	exists  bool
	data    map[string]string
}

// storedStatus is the app status kept in the inventory ConfigMap. It changes only when
// something happened, so a sync with nothing to do writes nothing.
type storedStatus struct {
	Phase       Phase  `json:"phase"`
	Revision    string `json:"revision"`
	LastError   string `json:"lastError,omitempty"`
	LastApplied string `json:"lastApplied,omitempty"`
	Message     string `json:"message,omitempty"`
}

func (s *Syncer) readInventory(ctx context.Context, app string) (*inventory, error) {
	cm := &corev1.ConfigMap{}
	err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Opts.InventoryNamespace, Name: inventoryName(app)}, cm)
	if apierrors.IsNotFound(err) {
		return &inventory{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read inventory ConfigMap %s/%s: %w", s.Opts.InventoryNamespace, inventoryName(app), err)
	}
	inv := &inventory{exists: true, data: cm.Data}
	if err := json.Unmarshal([]byte(cm.Data["inventory"]), &inv.Objects); err != nil && cm.Data["inventory"] != "" {
		return nil, fmt.Errorf("inventory ConfigMap %s/%s: %w; delete it to start afresh (nothing will be pruned)", cm.Namespace, cm.Name, err)
	}
	_ = json.Unmarshal([]byte(cm.Data["status"]), &inv.Status)
	return inv, nil
}

// writeInventory stores the inventory and status, only when they changed.
func (s *Syncer) writeInventory(ctx context.Context, app string, inv *inventory, objs []Ref, st storedStatus, writes *int) error {
	sort.Slice(objs, func(i, j int) bool { return objs[i].key() < objs[j].key() })
	ib, _ := json.Marshal(objs)
	if st.LastApplied == "" {
		st.LastApplied = inv.Status.LastApplied
	}
	sb, _ := json.Marshal(st)
	data := map[string]string{"inventory": string(ib), "status": string(sb), "app": app}
	if inv.exists && inv.data["inventory"] == data["inventory"] && inv.data["status"] == data["status"] && inv.data["app"] == app {
		return nil
	}
	cm := &unstructured.Unstructured{}
	cm.SetAPIVersion("v1")
	cm.SetKind("ConfigMap")
	cm.SetNamespace(s.Opts.InventoryNamespace)
	cm.SetName(inventoryName(app))
	cm.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "gitgate", "gitgate.dev/inventory": "true"})
	d := map[string]any{}
	for k, v := range data {
		d[k] = v
	}
	cm.Object["data"] = d
	*writes++
	if err := s.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(cm), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("write inventory ConfigMap %s/%s: %w", s.Opts.InventoryNamespace, cm.GetName(), err)
	}
	return nil
}

func (s *Syncer) ensureNamespace(ctx context.Context, name string, writes *int) error {
	if name == "" {
		return nil
	}
	ns := &corev1.Namespace{}
	err := s.Client.Get(ctx, client.ObjectKey{Name: name}, ns)
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	ns.Name = name
	ns.Labels = map[string]string{"app.kubernetes.io/managed-by": "gitgate"}
	*writes++
	if err := s.Client.Create(ctx, ns, client.FieldOwner(FieldManager)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
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

// applyOne compares the object with the live one and applies it only when it differs (so
// a sync with nothing to do writes nothing). The comparison is the stored fingerprint when
// it still matches, else a dry-run apply. It returns the fingerprint to store.
func (s *Syncer) applyOne(ctx context.Context, app App, obj *unstructured.Unstructured, fp string, heal, force bool, ignoreManagers []string) (ObjectResult, string, int, error) {
	ref := refOf(obj)
	or := ObjectResult{Ref: ref}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(obj.GroupVersionKind())
	err := s.Client.Get(ctx, client.ObjectKeyFromObject(obj), live)
	for i := 0; meta.IsNoMatchError(err) && i < 20; i++ {
		// A CRD established a moment ago: discovery catches up.
		select {
		case <-ctx.Done():
			return or, fp, 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		err = s.Client.Get(ctx, client.ObjectKeyFromObject(obj), live)
	}
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		if meta.IsNoMatchError(err) {
			return or, fp, 0, fmt.Errorf("the cluster does not serve %s: %w; install its CRD first (in an earlier sync wave)", obj.GetAPIVersion(), err)
		}
		return or, fp, 0, err
	}
	desiredHash := hashObject(obj)
	if exists {
		if fp != "" && fp == fingerprint(desiredHash, live) {
			or.Action = Unchanged
			return or, fp, 0, nil
		}
		diffs, conflict, err := s.dryRun(ctx, app, obj, live, force, ignoreManagers)
		if err != nil {
			return or, fp, 0, err
		}
		if len(diffs) == 0 && conflict == "" {
			or.Action = Unchanged
			return or, fp, 0, nil
		}
		or.Diffs = diffs
		if !heal {
			or.Action, or.Message = Drifted, "differs from Git; the app's syncPolicy does not selfHeal"
			return or, fp, 0, nil
		}
		if conflict != "" {
			or.Action, or.Message = Conflict, conflict
			return or, fp, 0, nil
		}
	}
	apply := obj.DeepCopy()
	opts := []client.ApplyOption{client.FieldOwner(FieldManager)}
	if force {
		opts = append(opts, client.ForceOwnership)
	}
	err = s.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(apply), opts...)
	if apierrors.IsConflict(err) {
		or.Action, or.Message = Conflict, conflictMessage(err)
		return or, fp, 1, nil
	}
	if err != nil {
		return or, fp, 1, fmt.Errorf("apply: %w", err)
	}
	or.Action = Configured
	if !exists {
		or.Action = Created
	}
	return or, fingerprint(desiredHash, apply), 1, nil
}

// hashObject is a hash of an object as gitgate sends it (encoding/json sorts map keys).
func hashObject(u *unstructured.Unstructured) string {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// fingerprint joins what gitgate applied with the fields the API server records as
// gitgate's on the object: another manager taking one of them over changes the latter.
func fingerprint(desiredHash string, live *unstructured.Unstructured) string {
	if desiredHash == "" {
		return ""
	}
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.FieldsV1 != nil {
			h := sha256.New()
			h.Write([]byte(mf.APIVersion))
			h.Write([]byte{0})
			h.Write(mf.FieldsV1.Raw)
			return desiredHash + "-" + hex.EncodeToString(h.Sum(nil)[:12])
		}
	}
	return ""
}

// dryRun applies obj with dryRun=All and compares the outcome with live. A conflict
// without force comes back as its message.
func (s *Syncer) dryRun(ctx context.Context, app App, obj, live *unstructured.Unstructured, force bool, ignoreManagers []string) ([]FieldDiff, string, error) {
	probe := obj.DeepCopy()
	opts := []client.ApplyOption{client.FieldOwner(FieldManager), client.DryRunAll}
	if force {
		opts = append(opts, client.ForceOwnership)
	}
	err := s.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(probe), opts...)
	conflict := ""
	if apierrors.IsConflict(err) {
		conflict = conflictMessage(err)
		// What would change if we took the fields over: the drift to show.
		probe = obj.DeepCopy()
		err = s.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(probe), client.FieldOwner(FieldManager), client.DryRunAll, client.ForceOwnership)
	}
	if err != nil {
		return nil, "", fmt.Errorf("dry-run apply: %w", err)
	}
	ptrs, mgrs := ignoreFor(app, obj)
	return Compare(probe, live, ptrs, append(mgrs, ignoreManagers...)), conflict, nil
}

func ignoreFor(app App, obj *unstructured.Unstructured) (ptrs, mgrs []string) {
	gvk := obj.GroupVersionKind()
	for _, r := range app.Ignore {
		if r.matches(gvk.Group, gvk.Kind, obj.GetNamespace(), obj.GetName()) {
			ptrs = append(ptrs, r.JSONPointers...)
			mgrs = append(mgrs, r.ManagedFieldsManagers...)
		}
	}
	return ptrs, mgrs
}

func conflictMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		var parts []string
		if st.Details != nil {
			for _, c := range st.Details.Causes {
				parts = append(parts, c.Message)
			}
		}
		if len(parts) > 0 {
			return "conflict: " + strings.Join(parts, "; ") + "; --force-conflicts takes the fields over"
		}
	}
	return err.Error() + "; --force-conflicts takes the fields over"
}

// pruneOne deletes an object of the inventory, unless it is gone or no longer carries our
// field manager (someone else took it over: it is theirs now).
func (s *Syncer) pruneOne(ctx context.Context, ref Ref) (ObjectResult, int, error) {
	or := ObjectResult{Ref: ref, Action: Pruned}
	live := ref.object()
	err := s.Client.Get(ctx, client.ObjectKeyFromObject(live), live)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		or.Message = "already gone"
		return or, 0, nil
	}
	if err != nil {
		return or, 0, err
	}
	ours := false
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply {
			ours = true
		}
	}
	if !ours {
		or.Action, or.Message = KeptPrune, "no longer managed by gitgate; left in place"
		return or, 0, nil
	}
	uid := live.GetUID()
	policyBG := metav1.DeletePropagationBackground
	err = s.Client.Delete(ctx, live, client.Preconditions{UID: &uid}, client.PropagationPolicy(policyBG))
	if apierrors.IsNotFound(err) {
		return or, 1, nil
	}
	if err != nil {
		return or, 1, fmt.Errorf("delete: %w", err)
	}
	return or, 1, nil
}
