package report

import (
	"github.com/gitgate/gitgate/policy"

	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

type junitSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Name     string   `xml:"name,attr"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	// Properties: a shard's identity (check --shard I/N).
	Properties *junitProperties `xml:"properties"`
	Suites     []junitSuite     `xml:"testsuite"`
}

type junitProperties struct {
	Property []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// junitShard is a shard's identity as properties gitgate.shard.*.
func junitShard(s *policy.ShardInfo) *junitProperties {
	if s == nil {
		return nil
	}
	p := &junitProperties{}
	add := func(k, v string) {
		p.Property = append(p.Property, junitProperty{Name: "gitgate.shard." + k, Value: xmlSafe(v)})
	}
	add("index", fmt.Sprint(s.Index))
	add("total", fmt.Sprint(s.Total))
	add("commit", s.Commit)
	add("dirty", fmt.Sprint(s.Dirty))
	if s.Changes != "" {
		add("changes", s.Changes)
	}
	add("plan", s.Plan)
	add("planned", fmt.Sprint(len(s.Planned)))
	add("assignment", s.Assignment)
	add("assignedBy", s.AssignedBy)
	add("targets", fmt.Sprint(s.Targets))
	return p
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	ClassName string         `xml:"classname,attr"`
	Name      string         `xml:"name,attr"`
	Failures  []junitProblem `xml:"failure"`
	Errors    []junitProblem `xml:"error"`
	Skipped   *junitSkipped  `xml:"skipped"`
	SystemOut *junitCDATA    `xml:"system-out"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitCDATA struct {
	Text string `xml:",cdata"`
}

// writeJUnit writes JUnit XML: a testsuite per render target (per file for plain
// manifests) and a testcase per target x policy rule, named policy/rule. Each failing
// resource of an Enforce rule is one <failure>, each rule that could not be evaluated
// one <error>; Audit findings do not fail the gate, so they are the testcase's
// <system-out>; a rule whose every result was waived or excepted is <skipped>. In
// merge-request mode messages start with [new] or [unchanged].
func writeJUnit(w io.Writer, rep *policy.Report) error {
	out := junitSuites{Name: "gitgate", Properties: junitShard(rep.Shard)}
	suiteAt := map[string]int{}
	caseAt := map[[2]string]int{}
	skips := map[[2]string][]string{}
	for _, r := range rep.Results {
		suite := r.Origin.Target
		if suite == "" {
			suite = r.Origin.File
		}
		si, ok := suiteAt[suite]
		if !ok {
			si = len(out.Suites)
			suiteAt[suite] = si
			out.Suites = append(out.Suites, junitSuite{Name: suite})
		}
		key := [2]string{suite, ruleID(r)}
		ci, ok := caseAt[key]
		if !ok {
			ci = len(out.Suites[si].Cases)
			caseAt[key] = ci
			out.Suites[si].Cases = append(out.Suites[si].Cases, junitCase{ClassName: suite, Name: ruleID(r)})
		}
		c := &out.Suites[si].Cases[ci]
		line := xmlSafe(baselineTag(r) + policy.FindingLine(r))
		short := xmlSafe(baselineTag(r) + r.ResourceID() + ": " + policy.CleanMessage(r.Message))
		body := line
		if r.Remediation != "" {
			body += "\n" + xmlSafe(r.Remediation)
		}
		switch {
		case r.Status == policy.StatusError:
			c.Errors = append(c.Errors, junitProblem{Message: short, Type: string(r.Action), Text: body})
		case r.Blocking():
			c.Failures = append(c.Failures, junitProblem{Message: short, Type: string(r.Action), Text: body})
		case r.Finding():
			if c.SystemOut == nil {
				c.SystemOut = &junitCDATA{}
			}
			c.SystemOut.Text += line + "\n"
		case r.Status == policy.StatusSkip && r.Exception != "":
			skips[key] = append(skips[key], xmlSafe(r.ResourceID()+": "+r.Exception))
		}
	}
	for si := range out.Suites {
		s := &out.Suites[si]
		for ci := range s.Cases {
			c := &s.Cases[ci]
			key := [2]string{s.Name, c.Name}
			s.Tests++
			switch {
			case len(c.Failures) > 0:
				s.Failures++
			case len(c.Errors) > 0:
				s.Errors++
			case len(skips[key]) > 0 && c.SystemOut == nil:
				c.Skipped = &junitSkipped{Message: fmt.Sprintf("waived or excepted: %s", strings.Join(skips[key], "; "))}
				s.Skipped++
			}
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		out.Skipped += s.Skipped
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// xmlSafe replaces the characters XML 1.0 cannot carry (even in CDATA) with U+FFFD.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t', r == '\n', r == '\r',
			r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return '\uFFFD'
	}, s)
}
