package render

import (
	"errors"
	"fmt"
)

// NotRenderedError is a target (or a part of one) that gitgate deliberately does not
// render, with the reason and where it is asked for: a kustomize exec, Go or KRM-function
// plugin, an Argo CD config management plugin, ... Nothing of it is evaluated, and the
// error says so instead of passing it as clean or printing the tool's raw error.
type NotRenderedError struct {
	// Target is the target's name (may be empty when the error is made below it).
	Target string
	// File is the repo-relative file that asks for what is not rendered, Line the line
	// of the entry in it (0: unknown).
	File string
	Line int
	// Reason is short and the same for every error of its kind ("kustomize plugin"), so
	// a summary can count by it; Detail says what exactly and what to do.
	Reason string
	Detail string
}

func (e *NotRenderedError) Error() string {
	msg := "not rendered: " + e.Reason
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	switch {
	case e.File != "" && e.Line > 0:
		msg += fmt.Sprintf(" (%s:%d)", e.File, e.Line)
	case e.File != "":
		msg += " (" + e.File + ")"
	}
	return msg
}

// SplitNotRendered separates what gitgate leaves out by design (*NotRenderedError: a
// notice, counted in the summary, never exit 2) from the errors a user must fix.
func SplitNotRendered(errs []error) (rest []error, notRendered []error) {
	for _, e := range errs {
		var nr *NotRenderedError
		if errors.As(e, &nr) {
			notRendered = append(notRendered, e)
		} else {
			rest = append(rest, e)
		}
	}
	return rest, notRendered
}
