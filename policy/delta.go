package policy

// Baseline is how a finding compares with the base revision in merge-request mode
// (check --base): it is new in the change, was already there, or the change fixed it.
type Baseline string

const (
	BaselineNew       Baseline = "new"
	BaselineUnchanged Baseline = "unchanged"
	BaselineFixed     Baseline = "fixed"
)

// Changes is what a merge-request check compared; Report.Changes is nil otherwise.
type Changes struct {
	// Base is the revision as the user named it, BaseCommit the commit it resolved to
	// (the merge base with HEAD).
	Base       string `json:"base"`
	BaseCommit string `json:"baseCommit"`
	// Files are the changed paths, repo-relative, slash-separated.
	Files []string `json:"files"`
	// PoliciesChanged is set when a policy (or .gitgate.yaml) changed, so every target
	// was re-evaluated under both policy sets.
	PoliciesChanged bool `json:"policiesChanged,omitempty"`
	// Targets are the affected targets, sorted by name.
	Targets []TargetChange `json:"targets"`
	// Fixed are findings the base had that head no longer has (Baseline fixed).
	Fixed []Result `json:"fixed"`
	// New, Unchanged and FixedCount count findings by baseline; NewBlocking counts the
	// new findings that block (only those fail a merge-request check).
	New         int `json:"new"`
	Unchanged   int `json:"unchanged"`
	FixedCount  int `json:"fixedCount"`
	NewBlocking int `json:"newBlocking"`
}

// TargetState says how an affected target changed.
type TargetState string

const (
	TargetAdded    TargetState = "added"
	TargetRemoved  TargetState = "removed"
	TargetModified TargetState = "modified"
)

// TargetChange is one affected target: how it changed, its verdict at base and at head
// (blocking means an Enforce finding), and its rendered diff (unified, Secret values
// masked; empty when the rendered output did not change).
type TargetChange struct {
	Name         string      `json:"name"`
	State        TargetState `json:"state"`
	BaseBlocking bool        `json:"baseBlocking"`
	HeadBlocking bool        `json:"headBlocking"`
	Diff         string      `json:"diff,omitempty"`
}

// NewlyFailing reports whether the change makes the target block (policy blast radius).
func (t TargetChange) NewlyFailing() bool { return t.HeadBlocking && !t.BaseBlocking }

// NewlyPassing reports whether the change makes a blocked target pass.
func (t TargetChange) NewlyPassing() bool { return t.BaseBlocking && !t.HeadBlocking }

// FindingKey identifies a finding across revisions: target, resource identity
// (group/Kind/namespace/name), policy/rule and the field it failed at when Kyverno
// names one, never a line number. The field keeps a second violation of a rule the
// resource already broke elsewhere (a container's image next to a bad initContainer's)
// from passing as unchanged.
func FindingKey(r Result) string {
	return r.Origin.Target + "\x00" + groupOf(r.APIVersion) + "\x00" + r.ResourceID() + "\x00" + r.Policy + "\x00" + r.Rule + "\x00" + r.Path
}

func groupOf(apiVersion string) string {
	for i := 0; i < len(apiVersion); i++ {
		if apiVersion[i] == '/' {
			return apiVersion[:i]
		}
	}
	return ""
}

// Classify compares head's findings with base's: every head finding gets Baseline new or
// unchanged, and the base findings head no longer has are returned as fixed. Only
// findings (fail, warn, error) take part; passes and skips are left alone.
func Classify(base, head []Result) (fixed []Result) {
	seen := map[string]int{}
	for _, r := range base {
		if r.Finding() {
			seen[FindingKey(r)]++
		}
	}
	for i := range head {
		if !head[i].Finding() {
			continue
		}
		k := FindingKey(head[i])
		if seen[k] > 0 {
			seen[k]--
			head[i].Baseline = BaselineUnchanged
		} else {
			head[i].Baseline = BaselineNew
		}
	}
	for _, r := range base {
		if !r.Finding() {
			continue
		}
		k := FindingKey(r)
		if seen[k] > 0 {
			seen[k]--
			r.Baseline = BaselineFixed
			fixed = append(fixed, r)
		}
	}
	SortResults(fixed)
	return fixed
}

// CountBaselines fills the counts of c from head's classified results.
func (c *Changes) CountBaselines(head []Result) {
	c.New, c.Unchanged, c.NewBlocking = 0, 0, 0
	for _, r := range head {
		switch r.Baseline {
		case BaselineNew:
			c.New++
			if r.Blocking() {
				c.NewBlocking++
			}
		case BaselineUnchanged:
			c.Unchanged++
		}
	}
	c.FixedCount = len(c.Fixed)
}
