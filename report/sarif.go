package report

import (
	"github.com/gitgate/gitgate/policy"

	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// SARIF 2.1.0 (OASIS): the format GitHub code scanning and most CI security dashboards
// read. report/testdata/sarif-schema-2.1.0.json is the official schema it is tested
// against.
const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	// sarifFingerprint is the partialFingerprints key: a hash of FindingKey (target,
	// resource identity, policy/rule, failing field), stable when lines move.
	sarifFingerprint = "gitgateFindingKey/v1"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
	Properties  map[string]any    `json:"properties,omitempty"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name  string      `json:"name"`
	Rules []sarifRule `json:"rules"`
}

type sarifMessage struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRule struct {
	ID                   string             `json:"id"`
	ShortDescription     sarifMessage       `json:"shortDescription"`
	FullDescription      sarifMessage       `json:"fullDescription"`
	Help                 sarifMessage       `json:"help"`
	HelpURI              string             `json:"helpUri,omitempty"`
	DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
	Properties           map[string]any     `json:"properties,omitempty"`
}

type sarifConfiguration struct {
	Level string `json:"level"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level     string          `json:"level"`
	Message   sarifMessage    `json:"message"`
	Locations []sarifLocation `json:"locations,omitempty"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Kind                string             `json:"kind"`
	Level               string             `json:"level"`
	Message             sarifMessage       `json:"message"`
	Locations           []sarifLocation    `json:"locations,omitempty"`
	RelatedLocations    []sarifLocation    `json:"relatedLocations,omitempty"`
	PartialFingerprints map[string]string  `json:"partialFingerprints"`
	BaselineState       string             `json:"baselineState,omitempty"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
	Properties          map[string]any     `json:"properties,omitempty"`
}

type sarifLocation struct {
	// ID and Message are set on related locations only (ids from 1).
	ID               int            `json:"id,omitempty"`
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
	Message          *sarifMessage  `json:"message,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

type sarifLogical struct {
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind,omitempty"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	Justification string `json:"justification,omitempty"`
}

// ruleID names a result's rule across formats: policy/rule, or the policy alone when
// the rule has its name.
func ruleID(r policy.Result) string {
	if r.Rule == "" || r.Rule == r.Policy {
		return r.Policy
	}
	return r.Policy + "/" + r.Rule
}

// fingerprints returns, for each result, a hash of its FindingKey (plus extra, when
// set), stable when lines move; the n-th repeat of the same key gets "#n" mixed in so
// the hashes stay unique within a report.
func fingerprints(rs []policy.Result, extra func(policy.Result) string) []string {
	seen := map[string]int{}
	out := make([]string, len(rs))
	for i, r := range rs {
		k := policy.FindingKey(r)
		if extra != nil {
			k += "\x00" + extra(r)
		}
		seen[k]++
		if n := seen[k]; n > 1 {
			k += "#" + strconv.Itoa(n)
		}
		sum := sha256.Sum256([]byte(k))
		out[i] = hex.EncodeToString(sum[:16])
	}
	return out
}

// sarifLevel is error for what blocks (Enforce), warning for the rest.
func sarifLevel(a policy.Action) string {
	if a == policy.Enforce {
		return "error"
	}
	return "warning"
}

// sarifURI turns a slash-separated, repo-relative file into a URI reference.
func sarifURI(file string) string {
	if path.IsAbs(file) {
		return (&url.URL{Scheme: "file", Path: file}).String()
	}
	return (&url.URL{Path: file}).String()
}

func sarifLocations(o policy.Origin, r policy.Result) []sarifLocation {
	loc := sarifLocation{}
	if o.File != "" {
		loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: sarifURI(o.File)}}
		if o.Line > 0 {
			loc.PhysicalLocation.Region = &sarifRegion{StartLine: o.Line, StartColumn: o.Col}
		}
	}
	if r.Kind != "" {
		loc.LogicalLocations = []sarifLogical{{FullyQualifiedName: r.ResourceID(), Kind: "resource"}}
	}
	if loc.PhysicalLocation == nil && loc.LogicalLocations == nil {
		return nil
	}
	return []sarifLocation{loc}
}

// securitySeverity maps the policies.kyverno.io/severity annotation to the CVSS-like
// score GitHub code scanning reads from a rule's security-severity property.
func securitySeverity(s string) string {
	switch strings.ToLower(s) {
	case "critical":
		return "9.5"
	case "high":
		return "8.0"
	case "medium":
		return "5.5"
	case "low":
		return "3.0"
	}
	return ""
}

// writeSARIF writes the report as a SARIF 2.1.0 log with one run: a rule per
// policy/rule (its help from the remediation annotation), a result per finding pinned
// to its file, line and column, with a stable partial fingerprint. Waived and excepted
// results are included with a suppression. In merge-request mode results carry their
// baselineState (new, unchanged) and fixed findings are "absent" results.
func writeSARIF(w io.Writer, rep *policy.Report) error {
	type item struct {
		r     policy.Result
		fixed bool
	}
	var items []item
	for _, r := range rep.Results {
		if r.Finding() || (r.Status == policy.StatusSkip && r.Exception != "") {
			items = append(items, item{r: r})
		}
	}
	if rep.Changes != nil {
		for _, r := range rep.Changes.Fixed {
			items = append(items, item{r: r, fixed: true})
		}
	}

	// Rules, sorted by id; the first result of a rule describes it.
	first := map[string]policy.Result{}
	for _, it := range items {
		id := ruleID(it.r)
		if _, ok := first[id]; !ok || (it.r.Status != policy.StatusError && first[id].Status == policy.StatusError) {
			first[id] = it.r
		}
	}
	ids := make([]string, 0, len(first))
	for id := range first {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	index := map[string]int{}
	rules := make([]sarifRule, 0, len(ids))
	for i, id := range ids {
		index[id] = i
		rules = append(rules, sarifRuleOf(id, first[id]))
	}

	rs := make([]policy.Result, len(items))
	for i, it := range items {
		rs[i] = it.r
	}
	prints := fingerprints(rs, nil)
	results := make([]sarifResult, 0, len(items))
	for i, it := range items {
		r := it.r
		id := ruleID(r)
		msg := policy.CleanMessage(r.Message)
		if r.Status == policy.StatusError {
			msg = "could not evaluate: " + msg
		}
		text := r.ResourceID() + ": " + msg
		if r.Path != "" {
			text += " (at " + r.Path
			if len(r.ValuesFrom) > 0 {
				text += "; value from " + policy.ValuesFromText(r.ValuesFrom)
			}
			text += ")"
		}
		res := sarifResult{
			RuleID:              id,
			RuleIndex:           index[id],
			Kind:                "fail",
			Level:               sarifLevel(r.Action),
			Message:             sarifMessage{Text: text},
			Locations:           sarifLocations(r.Origin, r),
			PartialFingerprints: map[string]string{sarifFingerprint: prints[i]},
			Properties:          map[string]any{"status": string(r.Status)},
		}
		for _, v := range r.ValuesFrom {
			if policy.IsRemoteFile(v.Origin.File) {
				continue // named in the message; no file of this repository to show
			}
			loc := sarifLocation{ID: len(res.RelatedLocations) + 1, Message: &sarifMessage{Text: "value of " + r.Path + " set here (" + v.Key + ")"},
				PhysicalLocation: &sarifPhysical{ArtifactLocation: sarifArtifact{URI: sarifURI(v.Origin.File)}}}
			if v.Origin.Line > 0 {
				loc.PhysicalLocation.Region = &sarifRegion{StartLine: v.Origin.Line, StartColumn: v.Origin.Col}
			}
			res.RelatedLocations = append(res.RelatedLocations, loc)
		}
		if r.Origin.Target != "" {
			res.Properties["target"] = r.Origin.Target
		}
		if r.Remediation != "" {
			res.Message.Text += ". " + r.Remediation
		}
		switch {
		case it.fixed:
			res.BaselineState = "absent"
			res.Kind, res.Level = "pass", "none"
			res.Message.Text = "fixed: " + res.Message.Text
		case rep.Changes != nil && r.Baseline != "":
			res.BaselineState = string(r.Baseline)
		}
		if r.Status == policy.StatusSkip {
			kind, why := "external", r.Exception // a PolicyException, kept outside the resource
			if reason, ok := strings.CutPrefix(r.Exception, "waiver: "); ok {
				kind, why = "inSource", reason // the resource's gitgate.dev/waive annotation
			}
			res.Suppressions = []sarifSuppression{{Kind: kind, Status: "accepted", Justification: why}}
		}
		results = append(results, res)
	}

	inv := sarifInvocation{ExecutionSuccessful: len(rep.Errors) == 0}
	for _, err := range rep.Errors {
		n := sarifNotification{Level: "error", Message: sarifMessage{Text: err.Error()}}
		if o, msg, ok := policy.SplitInputError(err); ok {
			n.Message.Text = msg
			n.Locations = sarifLocations(o, policy.Result{})
		}
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, n)
	}
	for _, d := range rep.Duplicates {
		n := sarifNotification{Level: "warning", Message: sarifMessage{Text: d.Resource + ": defined more than once"}}
		for _, o := range d.Origins {
			n.Locations = append(n.Locations, sarifLocations(o, policy.Result{})...)
		}
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, n)
	}
	for _, notice := range rep.Notices {
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{Level: "note", Message: sarifMessage{Text: notice}})
	}

	run := sarifRun{
		Tool:        sarifTool{Driver: sarifDriver{Name: "gitgate", Rules: rules}},
		Invocations: []sarifInvocation{inv},
		Results:     results,
	}
	if c := rep.Changes; c != nil {
		run.Properties = map[string]any{
			"base": c.Base, "baseCommit": c.BaseCommit,
			"new": c.New, "fixed": c.FixedCount, "unchanged": c.Unchanged, "newBlocking": c.NewBlocking,
		}
	}
	if sh := rep.Shard; sh != nil {
		if run.Properties == nil {
			run.Properties = map[string]any{}
		}
		run.Properties["shard"] = sh
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}})
}

func sarifRuleOf(id string, r policy.Result) sarifRule {
	msg := policy.CleanMessage(r.Message)
	if r.Status == policy.StatusError || msg == "" {
		msg = id
	}
	full := msg
	help := msg
	if r.Remediation != "" {
		full = msg + ". " + r.Remediation
		help = r.Remediation
	}
	rule := sarifRule{
		ID:                   id,
		ShortDescription:     sarifMessage{Text: firstSentence(msg)},
		FullDescription:      sarifMessage{Text: full},
		Help:                 sarifMessage{Text: help},
		DefaultConfiguration: sarifConfiguration{Level: sarifLevel(r.Action)},
	}
	if u, err := url.Parse(r.HelpURL); err == nil && u.IsAbs() {
		rule.HelpURI = r.HelpURL
	}
	props := map[string]any{}
	tags := []string{"kubernetes", "policy"}
	if r.Category != "" {
		tags = append(tags, r.Category)
	}
	props["tags"] = tags
	if s := securitySeverity(r.Severity); s != "" {
		props["security-severity"] = s
	}
	if r.Severity != "" {
		props["severity"] = r.Severity
	}
	rule.Properties = props
	return rule
}

// firstSentence keeps a rule's short description short: up to the first ". " and at
// most 200 characters.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i > 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return cmp.Or(s, "policy rule")
}
