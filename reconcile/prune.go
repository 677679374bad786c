package reconcile

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

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
