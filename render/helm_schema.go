package render

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"helm.sh/helm/v3/pkg/chart"
)

// helmValidateSchemas is chartutil.ValidateAgainstSchema without its HTTP and file
// loaders: a values.schema.json may only refer to itself and to the JSON Schema
// metaschemas; a remote $ref is a *RemoteError.
func helmValidateSchemas(ch *chart.Chart, values map[string]any) error {
	var sb strings.Builder
	var remote error
	var validate func(c *chart.Chart, values map[string]any)
	validate = func(c *chart.Chart, values map[string]any) {
		if c.Schema != nil {
			err := helmValidateSchema(values, c.Schema)
			var re *RemoteError
			if errors.As(err, &re) && remote == nil {
				remote = fmt.Errorf("values.schema.json of chart %s: %w", c.Name(), re)
			}
			if err != nil {
				fmt.Fprintf(&sb, "%s:\n%s", c.Name(), err.Error())
			}
		}
		for _, sub := range c.Dependencies() {
			raw, ok := values[sub.Name()]
			if !ok || raw == nil {
				continue
			}
			subValues, ok := raw.(map[string]any)
			if !ok {
				fmt.Fprintf(&sb, "%s:\ninvalid type for values: expected object (map), got %T\n", sub.Name(), raw)
				continue
			}
			validate(sub, subValues)
		}
	}
	validate(ch, values)
	if remote != nil {
		return remote
	}
	if sb.Len() > 0 {
		return fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s", sb.String())
	}
	return nil
}

func helmValidateSchema(values map[string]any, schemaJSON []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unable to validate schema: %v", r)
		}
	}()
	schema, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return err
	}
	ld := &helmSchemaLoader{}
	c := jsonschema.NewCompiler()
	c.UseLoader(ld)
	const loc = "file:///values.schema.json"
	if err := c.AddResource(loc, schema); err != nil {
		return err
	}
	v, err := c.Compile(loc)
	if ld.remote != "" {
		return &RemoteError{URL: ld.remote}
	}
	if err != nil {
		return err
	}
	if err := v.Validate(map[string]any(values)); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "jsonschema validation failed with 'file:///values.schema.json#'\n") + "\n")
	}
	return nil
}

// helmSchemaLoader loads nothing: urn: references get Helm's permissive schema, other
// references are refused (and http(s) ones remembered as remote).
type helmSchemaLoader struct{ remote string }

func (l *helmSchemaLoader) Load(url string) (any, error) {
	switch {
	case strings.HasPrefix(url, "urn:"):
		return true, nil
	case strings.HasPrefix(url, "http://"), strings.HasPrefix(url, "https://"):
		if l.remote == "" {
			l.remote = url
		}
		return nil, &RemoteError{URL: url}
	}
	return nil, fmt.Errorf("%s: only references inside values.schema.json are resolved", url)
}
