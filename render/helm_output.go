package render

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gitgate/gitgate/policy"
	"helm.sh/helm/v3/pkg/releaseutil"
)

// helmDocs maps the documents one template rendered to positions in the template.
type helmDocs struct {
	src  helmSource
	docs []string // as releaseutil.SplitManifests split them, in order
	pos  []helmDocPos
	used []bool
}

type helmDocPos struct {
	// exact: the document is in the template verbatim, starting after offset lines.
	exact  bool
	offset int
	line   int
}

func newHelmDocs(rendered string, src helmSource, name string) *helmDocs {
	if src.file == "" {
		src.file = name
	}
	split := releaseutil.SplitManifests(rendered)
	keys := make([]string, 0, len(split))
	for k := range split {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	d := &helmDocs{src: src, docs: make([]string, len(keys)), used: make([]bool, len(keys))}
	for i, k := range keys {
		d.docs[i] = split[k]
	}
	d.pos = helmDocPositions(string(src.data), d.docs)
	return d
}

// helmDocPositions finds each rendered document in the template text. A document found
// verbatim at the start of a line has an exact position. For the others: if the
// template's "---"-separated sections that hold anything correspond one to one with the
// rendered documents, the first line of the matching section, else line 1.
func helmDocPositions(text string, docs []string) []helmDocPos {
	sections := helmSections(text)
	out := make([]helmDocPos, len(docs))
	cursor := 0
	for k, doc := range docs {
		p := helmDocPos{line: 1}
		if len(sections) == len(docs) {
			p.line = sections[k]
		}
		if i := strings.Index(text[cursor:], doc); i >= 0 && doc != "" {
			at := cursor + i
			if at == 0 || text[at-1] == '\n' {
				n := strings.Count(text[:at], "\n")
				p = helmDocPos{exact: true, offset: n, line: n + 1}
				cursor = at + len(doc)
			}
		}
		out[k] = p
	}
	return out
}

// helmSections returns the first non-blank line of every non-blank section of a
// template, splitting where releaseutil.SplitManifests would: lines starting with "---".
func helmSections(text string) []int {
	var out []int
	start := 0 // first non-blank line of the current section, 0 if none yet
	for i, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "---"):
			if start > 0 {
				out = append(out, start)
			}
			start = 0
		case start == 0 && strings.TrimSpace(line) != "":
			start = i + 1
		}
	}
	if start > 0 {
		out = append(out, start)
	}
	return out
}

func (d *helmDocs) decode(content, target string) ([]policy.Resource, error) {
	k := -1
	for i, doc := range d.docs {
		if !d.used[i] && doc == content {
			k = i
			break
		}
	}
	p := helmDocPos{line: 1}
	if k >= 0 {
		d.used[k] = true
		p = d.pos[k]
	}
	if d.src.archive {
		p = helmDocPos{}
	}
	rs, err := policy.Decode(d.src.file, []byte(content))
	var ie *policy.InputError
	if errors.As(err, &ie) {
		if p.exact {
			ie.Origin.Line += p.offset
		} else {
			err = &TemplateError{File: d.src.file, Line: p.line,
				Err: fmt.Errorf("rendered document, line %d: %w", ie.Origin.Line, ie.Err)}
		}
	}
	for i := range rs {
		r := &rs[i]
		r.Origin.Target = target
		switch {
		case p.exact:
			r.Origin.Line += p.offset
			r.Fields = helmShiftedLocator{r.Fields, p.offset}
		default:
			r.Origin.Line, r.Origin.Col, r.Fields = p.line, 0, nil
		}
	}
	return rs, err
}

// helmShiftedLocator moves the positions of a document decoded on its own to where the
// document starts in its file.
type helmShiftedLocator struct {
	l     policy.Locator
	lines int
}

func (s helmShiftedLocator) Locate(p []string) (int, int, bool) {
	if s.l == nil {
		return 0, 0, false
	}
	line, col, ok := s.l.Locate(p)
	if !ok {
		return 0, 0, false
	}
	return line + s.lines, col, true
}
