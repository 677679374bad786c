package reconcile

import (
	"context"
	"fmt"

	"github.com/gitgate/gitgate/policy"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// addLiveCRDs adds the CRDs the cluster serves to set, so that a custom resource whose
// CRD another app or an operator installed is validated before apply as the API server
// will validate it, and blocks its app with the API server's message instead of failing
// half applied. A CRD in the repository wins over the live one of its kind (a sync
// applies it first). Nil set: nothing to do.
func addLiveCRDs(ctx context.Context, c client.Client, set *policy.CRDSet) error {
	if set == nil {
		return nil
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(schema.GroupVersionKind{Group: policy.CRDGroup, Version: "v1", Kind: "CustomResourceDefinitionList"})
	if err := c.List(ctx, list); err != nil {
		return fmt.Errorf("custom resources are validated without the cluster's CustomResourceDefinitions (only the repository's, --crds and the bundled ones): list them: %w", err)
	}
	for i := range list.Items {
		set.AddLive(&list.Items[i], "the cluster")
	}
	return nil
}
