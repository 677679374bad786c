package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The tekton.dev/v1 fields the runner understands. They mirror Tekton's own Go types
// (github.com/tektoncd/pipeline/pkg/apis/pipeline/v1) closely enough that a file Tekton
// accepts decodes here, and strictly: a field this file does not list is an error naming
// it, never silently ignored. Fields that only matter in a cluster (volumes, volume
// mounts, compute resources, the security context) are decoded with their Kubernetes
// types so they are validated, recorded and gated, but they do not change how a step runs
// on the host.

// APIVersion is the only Tekton API version the runner reads.
const APIVersion = "tekton.dev/v1"

// Pipeline is a tekton.dev/v1 Pipeline.
type Pipeline struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              PipelineSpec `json:"spec"`
}

// PipelineSpec is a Pipeline's spec.
type PipelineSpec struct {
	DisplayName string                         `json:"displayName,omitempty"`
	Description string                         `json:"description,omitempty"`
	Tasks       []PipelineTask                 `json:"tasks,omitempty"`
	Params      []ParamSpec                    `json:"params,omitempty"`
	Workspaces  []PipelineWorkspaceDeclaration `json:"workspaces,omitempty"`
	Results     []PipelineResult               `json:"results,omitempty"`
	Finally     []PipelineTask                 `json:"finally,omitempty"`
}

// PipelineTask is one entry of a Pipeline's tasks or finally.
type PipelineTask struct {
	Name        string                         `json:"name"`
	DisplayName string                         `json:"displayName,omitempty"`
	Description string                         `json:"description,omitempty"`
	TaskRef     *TaskRef                       `json:"taskRef,omitempty"`
	TaskSpec    *EmbeddedTask                  `json:"taskSpec,omitempty"`
	When        []WhenExpression               `json:"when,omitempty"`
	Retries     int                            `json:"retries,omitempty"`
	RunAfter    []string                       `json:"runAfter,omitempty"`
	Params      []Param                        `json:"params,omitempty"`
	Workspaces  []WorkspacePipelineTaskBinding `json:"workspaces,omitempty"`
	// Timeout is a Go duration ("1h30m"); "0" means no timeout.
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// TaskRef names a Task loaded from the same files.
type TaskRef struct {
	Name       string `json:"name,omitempty"`
	Kind       string `json:"kind,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
}

// EmbeddedTask is a taskSpec written inside a Pipeline.
type EmbeddedTask struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        *PipelineTaskMetadata `json:"metadata,omitempty"`
	TaskSpec        `json:",inline"`
}

// PipelineTaskMetadata is the metadata an embedded taskSpec may carry.
type PipelineTaskMetadata struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Task is a tekton.dev/v1 Task.
type Task struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TaskSpec `json:"spec"`
}

// TaskSpec is a Task's spec.
type TaskSpec struct {
	DisplayName  string                 `json:"displayName,omitempty"`
	Description  string                 `json:"description,omitempty"`
	Params       []ParamSpec            `json:"params,omitempty"`
	Steps        []Step                 `json:"steps,omitempty"`
	Volumes      []corev1.Volume        `json:"volumes,omitempty"`
	StepTemplate *StepTemplate          `json:"stepTemplate,omitempty"`
	Sidecars     []Sidecar              `json:"sidecars,omitempty"`
	Workspaces   []WorkspaceDeclaration `json:"workspaces,omitempty"`
	Results      []TaskResult           `json:"results,omitempty"`
}

// Step is one step of a Task: a process run on the host.
type Step struct {
	Name             string                      `json:"name"`
	Image            string                      `json:"image,omitempty"`
	Command          []string                    `json:"command,omitempty"`
	Args             []string                    `json:"args,omitempty"`
	WorkingDir       string                      `json:"workingDir,omitempty"`
	EnvFrom          []corev1.EnvFromSource      `json:"envFrom,omitempty"`
	Env              []corev1.EnvVar             `json:"env,omitempty"`
	ComputeResources corev1.ResourceRequirements `json:"computeResources,omitempty"`
	VolumeMounts     []corev1.VolumeMount        `json:"volumeMounts,omitempty"`
	VolumeDevices    []corev1.VolumeDevice       `json:"volumeDevices,omitempty"`
	ImagePullPolicy  corev1.PullPolicy           `json:"imagePullPolicy,omitempty"`
	SecurityContext  *corev1.SecurityContext     `json:"securityContext,omitempty"`
	Script           string                      `json:"script,omitempty"`
	Timeout          *metav1.Duration            `json:"timeout,omitempty"`
	Workspaces       []WorkspaceUsage            `json:"workspaces,omitempty"`
	// OnError is continue or stopAndFail (the default).
	OnError string `json:"onError,omitempty"`
}

// StepTemplate holds defaults every step of the Task inherits.
type StepTemplate struct {
	Image            string                      `json:"image,omitempty"`
	Command          []string                    `json:"command,omitempty"`
	Args             []string                    `json:"args,omitempty"`
	WorkingDir       string                      `json:"workingDir,omitempty"`
	EnvFrom          []corev1.EnvFromSource      `json:"envFrom,omitempty"`
	Env              []corev1.EnvVar             `json:"env,omitempty"`
	ComputeResources corev1.ResourceRequirements `json:"computeResources,omitempty"`
	VolumeMounts     []corev1.VolumeMount        `json:"volumeMounts,omitempty"`
	VolumeDevices    []corev1.VolumeDevice       `json:"volumeDevices,omitempty"`
	SecurityContext  *corev1.SecurityContext     `json:"securityContext,omitempty"`
}

// Sidecar is decoded, gated and recorded; sidecars are not started on the host.
type Sidecar struct {
	corev1.Container `json:",inline"`
	Script           string           `json:"script,omitempty"`
	Workspaces       []WorkspaceUsage `json:"workspaces,omitempty"`
}

// WorkspaceUsage is a step's or sidecar's use of a Task workspace.
type WorkspaceUsage struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath,omitempty"`
}

// WorkspaceDeclaration is a workspace a Task needs.
type WorkspaceDeclaration struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	MountPath   string `json:"mountPath,omitempty"`
	ReadOnly    bool   `json:"readOnly,omitempty"`
	Optional    bool   `json:"optional,omitempty"`
}

// PipelineWorkspaceDeclaration is a workspace a Pipeline needs.
type PipelineWorkspaceDeclaration struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Optional    bool   `json:"optional,omitempty"`
}

// WorkspacePipelineTaskBinding binds a Task workspace to a Pipeline workspace.
type WorkspacePipelineTaskBinding struct {
	Name      string `json:"name"`
	Workspace string `json:"workspace,omitempty"`
	SubPath   string `json:"subPath,omitempty"`
}

// ParamType is string, array or object.
type ParamType string

const (
	ParamTypeString ParamType = "string"
	ParamTypeArray  ParamType = "array"
	ParamTypeObject ParamType = "object"
)

// ParamSpec declares a param of a Pipeline or Task.
type ParamSpec struct {
	Name        string                  `json:"name"`
	Type        ParamType               `json:"type,omitempty"`
	Description string                  `json:"description,omitempty"`
	Properties  map[string]PropertySpec `json:"properties,omitempty"`
	Default     *ParamValue             `json:"default,omitempty"`
	Enum        []string                `json:"enum,omitempty"`
}

// PropertySpec is one key of an object param or result.
type PropertySpec struct {
	Type ParamType `json:"type,omitempty"`
}

// Param is a value given to a param.
type Param struct {
	Name  string     `json:"name"`
	Value ParamValue `json:"value"`
}

// TaskResult declares a result a Task writes to $(results.name.path).
type TaskResult struct {
	Name        string                  `json:"name"`
	Type        ParamType               `json:"type,omitempty"`
	Description string                  `json:"description,omitempty"`
	Properties  map[string]PropertySpec `json:"properties,omitempty"`
}

// PipelineResult is a Pipeline result computed from its tasks' results.
type PipelineResult struct {
	Name        string     `json:"name"`
	Type        ParamType  `json:"type,omitempty"`
	Description string     `json:"description,omitempty"`
	Value       ParamValue `json:"value"`
}

// WhenExpression guards a PipelineTask: input in (or notin) values.
type WhenExpression struct {
	Input    string   `json:"input,omitempty"`
	Operator string   `json:"operator,omitempty"`
	Values   []string `json:"values,omitempty"`
	CEL      string   `json:"cel,omitempty"`
}

// ParamValue is a string, an array of strings or an object of strings, as Tekton's
// ParamValue; its JSON form is the bare value.
type ParamValue struct {
	Type      ParamType
	StringVal string
	ArrayVal  []string
	ObjectVal map[string]string
}

// UnmarshalJSON reads a string, an array of strings or an object of strings.
func (v *ParamValue) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case len(data) == 0 || string(data) == "null":
		*v = ParamValue{Type: ParamTypeString}
		return nil
	case data[0] == '[':
		var a []string
		if err := json.Unmarshal(data, &a); err != nil {
			return fmt.Errorf("array param values must be strings: %w", err)
		}
		*v = ParamValue{Type: ParamTypeArray, ArrayVal: a}
		if v.ArrayVal == nil {
			v.ArrayVal = []string{}
		}
		return nil
	case data[0] == '{':
		var o map[string]string
		if err := json.Unmarshal(data, &o); err != nil {
			return fmt.Errorf("object param values must map keys to strings: %w", err)
		}
		*v = ParamValue{Type: ParamTypeObject, ObjectVal: o}
		return nil
	case data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*v = ParamValue{Type: ParamTypeString, StringVal: s}
		return nil
	}
	// A bare number or boolean: Tekton reads it as its string form.
	*v = ParamValue{Type: ParamTypeString, StringVal: string(data)}
	return nil
}

// MarshalJSON writes the bare value.
func (v ParamValue) MarshalJSON() ([]byte, error) {
	switch v.Type {
	case ParamTypeArray:
		if v.ArrayVal == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(v.ArrayVal)
	case ParamTypeObject:
		if v.ObjectVal == nil {
			return []byte("{}"), nil
		}
		return json.Marshal(v.ObjectVal)
	}
	return json.Marshal(v.StringVal)
}

// String is the value for messages and the summary: a string as is, arrays and
// objects as JSON.
func (v ParamValue) String() string {
	if v.Type == ParamTypeString || v.Type == "" {
		return v.StringVal
	}
	b, _ := v.MarshalJSON()
	return string(b)
}

// ParseParamValue reads a value given on the command line for a param of type t: a
// string as is; an array as a JSON array or comma-separated; an object as a JSON object
// or comma-separated key:value pairs.
func ParseParamValue(t ParamType, s string) (ParamValue, error) {
	switch t {
	case ParamTypeArray:
		if strings.HasPrefix(strings.TrimSpace(s), "[") {
			var v ParamValue
			if err := v.UnmarshalJSON([]byte(s)); err != nil || v.Type != ParamTypeArray {
				return ParamValue{}, fmt.Errorf("not a JSON array of strings: %q", s)
			}
			return v, nil
		}
		if s == "" {
			return ParamValue{Type: ParamTypeArray, ArrayVal: []string{}}, nil
		}
		return ParamValue{Type: ParamTypeArray, ArrayVal: strings.Split(s, ",")}, nil
	case ParamTypeObject:
		if strings.HasPrefix(strings.TrimSpace(s), "{") {
			var v ParamValue
			if err := v.UnmarshalJSON([]byte(s)); err != nil || v.Type != ParamTypeObject {
				return ParamValue{}, fmt.Errorf("not a JSON object of strings: %q", s)
			}
			return v, nil
		}
		o := map[string]string{}
		for _, kv := range strings.Split(s, ",") {
			k, val, ok := strings.Cut(kv, ":")
			if !ok {
				return ParamValue{}, fmt.Errorf("object values are key:value,key:value or JSON; %q has no ':'", kv)
			}
			o[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		return ParamValue{Type: ParamTypeObject, ObjectVal: o}, nil
	}
	return ParamValue{Type: ParamTypeString, StringVal: s}, nil
}

// typeOf is a declared type, string when left out (Tekton's default).
func typeOf(t ParamType) ParamType {
	if t == "" {
		return ParamTypeString
	}
	return t
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
