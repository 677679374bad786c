package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

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
