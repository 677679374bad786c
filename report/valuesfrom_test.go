package report

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/policy"
)

// TestValuesFrom: a finding whose value came from values files names them in every
// format: text and markdown list each (a fetched file as code, not a link to a page this
// repository does not have), SARIF adds a valid related location for this repository's
// file only.
func TestValuesFrom(t *testing.T) {
	r := latestFinding(18)
	r.Origin = policy.Origin{File: "web@1.0.0:templates/deploy.yaml", Line: 9, Target: "web"}
	r.Path = "spec.template.spec.containers[0].image"
	r.ValuesFrom = []policy.ValueOrigin{
		{Origin: policy.Origin{File: "web@1.0.0:values.yaml", Line: 2, Col: 15}, Key: "image.repository"},
		{Origin: policy.Origin{File: "values/prod.yaml", Line: 3, Col: 8}, Key: "image.tag"},
	}
	rep := &policy.Report{Results: []policy.Result{r}, Summary: policy.Summary{Targets: 1, Fail: 1, Blocking: 1}}

	text := string(render(t, "text", rep))
	if want := "(at spec.template.spec.containers[0].image; value from web@1.0.0:values.yaml:2:15 (image.repository) and values/prod.yaml:3:8 (image.tag))"; !strings.Contains(text, want) {
		t.Errorf("text: missing %q\n%s", want, text)
	}
	md := markdown(rep, defaultMarkdownOptions())
	if want := "; value from `web@1.0.0:values.yaml:2` `image.repository` and [values/prod.yaml:3](values/prod.yaml#L3) `image.tag`)"; !strings.Contains(md, want) {
		t.Errorf("markdown: missing %q\n%s", want, md)
	}
	if strings.Contains(md, "](web@1.0.0") {
		t.Errorf("markdown links a fetched chart's file:\n%s", md)
	}

	data := render(t, "sarif", rep)
	validateSARIF(t, sarifValidator(t), data)
	var got struct {
		Runs []struct {
			Results []struct {
				RelatedLocations []struct {
					ID               int
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine, StartColumn int }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	rel := got.Runs[0].Results[0].RelatedLocations
	if len(rel) != 1 || rel[0].ID != 1 || rel[0].PhysicalLocation.ArtifactLocation.URI != "values/prod.yaml" || rel[0].PhysicalLocation.Region.StartLine != 3 {
		t.Errorf("SARIF related locations %+v, want values/prod.yaml:3 only", rel)
	}
}
