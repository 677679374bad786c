package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

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
