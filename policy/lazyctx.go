package policy

import (
	"reflect"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	"github.com/kyverno/kyverno/pkg/config"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	enginecontext "github.com/kyverno/kyverno/pkg/engine/context"
	"github.com/kyverno/kyverno/pkg/engine/policycontext"
	apiutils "github.com/kyverno/kyverno/pkg/utils/api"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// lazyContext makes Kyverno's JSON-context checkpoints copy-on-write.
//
// Kyverno's engine takes a checkpoint (a deep copy of the whole context, the resource
// included) around every policy and every rule, and restores it afterwards, so that a
// rule's context entries and foreach elements do not leak into the next rule. Most
// validate rules never write to the context, so most of those copies are wasted: they
// were about a fifth of the CPU of a check. Here a checkpoint is only recorded; the real
// copy is taken the first time anything writes to the context while the checkpoint is
// open, and a restore of a checkpoint that was never written under is a no-op.
//
// The engine re-adds the (unchanged) resource after every rule; adding the map that is
// already the context's request.object is recognised and skipped.
type lazyContext struct {
	enginecontext.Interface
	// levels are the open checkpoints, oldest first; true once copied in the inner context.
	levels []bool
	// object is the map last given to AddResource when it is known to be what
	// request.object holds, else nil.
	object map[string]any
	// eager is set once a deferred loader is registered: loading it on a later query
	// writes to the context unseen, so from then on every checkpoint is a real copy.
	eager bool
}

var _ enginecontext.Interface = (*lazyContext)(nil)

// write must be called before anything changes the inner context.
func (l *lazyContext) write() {
	for i, done := range l.levels {
		if !done {
			l.Interface.Checkpoint()
			l.levels[i] = true
		}
	}
	l.object = nil
}

func (l *lazyContext) Checkpoint() {
	if l.eager {
		l.Interface.Checkpoint()
	}
	l.levels = append(l.levels, l.eager)
}

func (l *lazyContext) Restore() {
	n := len(l.levels) - 1
	if n < 0 {
		l.Interface.Restore()
		return
	}
	if l.levels[n] {
		l.Interface.Restore()
		l.object = nil
	}
	l.levels = l.levels[:n]
}

func (l *lazyContext) Reset() {
	n := len(l.levels) - 1
	if n < 0 || l.levels[n] {
		l.Interface.Reset()
		l.object = nil
	}
}

func sameMap(a, b map[string]any) bool {
	return a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func (l *lazyContext) AddResource(data map[string]any) error {
	if sameMap(data, l.object) {
		return nil
	}
	l.write()
	if err := l.Interface.AddResource(data); err != nil {
		return err
	}
	l.object = data
	return nil
}

func (l *lazyContext) AddRequest(r admissionv1.AdmissionRequest) error {
	l.write()
	return l.Interface.AddRequest(r)
}

func (l *lazyContext) AddVariable(key string, value any) error {
	l.write()
	return l.Interface.AddVariable(key, value)
}

func (l *lazyContext) AddContextEntry(name string, raw []byte) error {
	l.write()
	return l.Interface.AddContextEntry(name, raw)
}

func (l *lazyContext) ReplaceContextEntry(name string, raw []byte) error {
	l.write()
	return l.Interface.ReplaceContextEntry(name, raw)
}

func (l *lazyContext) AddOldResource(data map[string]any) error {
	l.write()
	return l.Interface.AddOldResource(data)
}

func (l *lazyContext) SetTargetResource(data map[string]any) error {
	l.write()
	return l.Interface.SetTargetResource(data)
}

func (l *lazyContext) AddOperation(op string) error {
	l.write()
	return l.Interface.AddOperation(op)
}

func (l *lazyContext) AddUserInfo(u kyvernov2.RequestInfo) error {
	l.write()
	return l.Interface.AddUserInfo(u)
}

func (l *lazyContext) AddServiceAccount(name string) error {
	l.write()
	return l.Interface.AddServiceAccount(name)
}

func (l *lazyContext) AddNamespace(ns string) error {
	l.write()
	return l.Interface.AddNamespace(ns)
}

func (l *lazyContext) AddElement(data any, index, nesting int) error {
	l.write()
	return l.Interface.AddElement(data, index, nesting)
}

func (l *lazyContext) AddImageInfo(info apiutils.ImageInfo, cfg config.Configuration) error {
	l.write()
	return l.Interface.AddImageInfo(info, cfg)
}

func (l *lazyContext) AddImageInfos(r *unstructured.Unstructured, cfg config.Configuration) error {
	l.write()
	return l.Interface.AddImageInfos(r, cfg)
}

func (l *lazyContext) AddDeferredLoader(d enginecontext.DeferredLoader) error {
	l.write()
	l.eager = true
	return l.Interface.AddDeferredLoader(d)
}

// lazyPolicyContext is a Kyverno policy context whose JSON context is a lazyContext.
// Kyverno's engine takes the engineapi.PolicyContext interface, so this is all it sees.
type lazyPolicyContext struct {
	*policycontext.PolicyContext
	jc *lazyContext
}

var _ engineapi.PolicyContext = lazyPolicyContext{}

func (c lazyPolicyContext) JSONContext() enginecontext.Interface { return c.jc }

func (c lazyPolicyContext) Copy() engineapi.PolicyContext {
	return lazyPolicyContext{PolicyContext: c.PolicyContext.Copy().(*policycontext.PolicyContext), jc: c.jc}
}

// SetResources and SetOperation write to the context behind the wrapper's back.
func (c lazyPolicyContext) SetResources(oldResource, newResource unstructured.Unstructured) error {
	c.jc.write()
	return c.PolicyContext.SetResources(oldResource, newResource)
}

func (c lazyPolicyContext) SetOperation(op kyvernov1.AdmissionOperation) error {
	c.jc.write()
	return c.PolicyContext.SetOperation(op)
}
