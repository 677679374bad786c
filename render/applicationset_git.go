package render

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// ---- git generator ----

func (d *argoDiscovery) scan() error {
	if d.scanned {
		return d.scanErr
	}
	d.scanned = true
	if d.repo.FS == nil {
		d.scanErr = errors.New("no repository checkout to scan")
		return d.scanErr
	}
	d.scanErr = fs.WalkDir(d.repo.FS, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p == "." {
				return nil
			}
			if e.Name() == ".git" {
				return fs.SkipDir
			}
			if !strings.Contains("/"+p, "/.") {
				d.dirs = append(d.dirs, p)
			}
			return nil
		}
		d.files = append(d.files, p)
		return nil
	})
	return d.scanErr
}

func (s *argoSet) git(m map[string]any, at []string) ([]map[string]any, error) {
	repoURL := argoString(m["repoURL"])
	if !s.d.inferred && !s.d.isThisRepo(repoURL) {
		s.notice(append(slices.Clone(at), "repoURL"), "git generator repoURL %s: not in this repository; skipped", repoURL)
		return nil, nil
	}
	if err := s.d.scan(); err != nil {
		return nil, fmt.Errorf("scanning the checkout: %w", err)
	}
	prefix := argoString(m["pathParamPrefix"])
	values := map[string]string{}
	if vm, ok := m["values"].(map[string]any); ok {
		for k, v := range vm {
			values[k] = argoScalar(v)
		}
	}
	var out []map[string]any
	var what string
	if dirs, _ := m["directories"].([]any); len(dirs) > 0 {
		what = "directories"
		items, err := argoGitItems(dirs, "directories")
		if err != nil {
			return nil, err
		}
		for _, dir := range s.d.dirs {
			in, ex := false, false
			for _, it := range items {
				ok, err := path.Match(it.path, dir)
				if err != nil {
					return nil, fmt.Errorf("directories path %q: %w", it.path, err)
				}
				if ok && it.exclude {
					ex = true
				} else if ok {
					in = true
				}
			}
			if in && !ex {
				out = append(out, s.pathParams(dir, "", prefix))
			}
		}
	} else if files, _ := m["files"].([]any); len(files) > 0 {
		what = "files"
		items, err := argoGitItems(files, "files")
		if err != nil {
			return nil, err
		}
		// Argo CD's default hands the pattern to git ls-files, where "*" also matches
		// "/"; the new globbing keeps "*" inside a directory and lets "**" span them.
		res := make([]*regexp.Regexp, len(items))
		for i, it := range items {
			if res[i], err = argoGlobRegexp(it.path, !s.d.opts.NewGitFileGlobbing); err != nil {
				return nil, fmt.Errorf("files[%d]: %w", i, err)
			}
		}
		for _, f := range s.d.files {
			in, ex := false, false
			for i, it := range items {
				if res[i].MatchString(f) {
					if it.exclude {
						ex = true
					} else {
						in = true
					}
				}
			}
			if !in || ex {
				continue
			}
			ps, err := s.fileParams(f, prefix)
			if err != nil {
				return nil, err
			}
			out = append(out, ps...)
		}
	} else {
		return nil, errors.New("needs directories or files")
	}
	if len(out) == 0 {
		s.notice(at, "git %s generator matched nothing in this checkout", what)
		return nil, nil
	}
	if s.d.inferred && repoURL != "" {
		s.d.urls[argoNormalizeURL(repoURL)] = true
	}
	for _, p := range out {
		if err := s.addValues(p, values); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type argoGitItem struct {
	path    string
	exclude bool
}

func argoGitItems(list []any, field string) ([]argoGitItem, error) {
	var items []argoGitItem
	for i, it := range list {
		im, ok := it.(map[string]any)
		if !ok || argoString(im["path"]) == "" {
			return nil, fmt.Errorf("%s[%d] needs a path", field, i)
		}
		ex, _ := im["exclude"].(bool)
		items = append(items, argoGitItem{path: argoString(im["path"]), exclude: ex})
	}
	return items, nil
}

// pathParams are the git generator's path parameters for a directory, or for the
// directory of a file.
func (s *argoSet) pathParams(dir, file, prefix string) map[string]any {
	p := map[string]any{}
	name := "path"
	if prefix != "" {
		name = prefix + ".path"
	}
	segments := strings.Split(dir, "/")
	if s.goTemplate {
		pm := map[string]any{
			"path":               dir,
			"basename":           path.Base(dir),
			"basenameNormalized": argoSanitizeName(path.Base(dir)),
			"segments":           segments,
		}
		if file != "" {
			pm["filename"] = path.Base(file)
			pm["filenameNormalized"] = argoSanitizeName(path.Base(file))
		}
		if prefix != "" {
			p[prefix] = map[string]any{"path": pm}
		} else {
			p["path"] = pm
		}
		return p
	}
	p[name] = dir
	p[name+".basename"] = path.Base(dir)
	p[name+".basenameNormalized"] = argoSanitizeName(path.Base(dir))
	if file != "" {
		p[name+".filename"] = path.Base(file)
		p[name+".filenameNormalized"] = argoSanitizeName(path.Base(file))
	}
	for i, seg := range segments {
		if seg != "" {
			p[name+"["+strconv.Itoa(i)+"]"] = seg
		}
	}
	return p
}

func (s *argoSet) fileParams(file, prefix string) ([]map[string]any, error) {
	data, err := fs.ReadFile(s.d.repo.FS, file)
	if err != nil {
		return nil, err
	}
	var objs []map[string]any
	if err := yaml.Unmarshal(data, &objs); err != nil {
		var one map[string]any
		if err := yaml.Unmarshal(data, &one); err != nil {
			return nil, fmt.Errorf("files: %s: %w", file, err)
		}
		objs = []map[string]any{one}
	} else if len(objs) == 0 {
		objs = []map[string]any{{}}
	}
	var out []map[string]any
	for _, obj := range objs {
		p := map[string]any{}
		if s.goTemplate {
			maps.Copy(p, obj)
		} else {
			flat := map[string]string{}
			argoFlatten("", obj, flat)
			for k, v := range flat {
				p[k] = v
			}
		}
		maps.Copy(p, s.pathParams(path.Dir(file), file, prefix))
		out = append(out, p)
	}
	return out, nil
}

// argoGlobRegexp translates a glob (*, ?, [...], **) into a regular expression.
func argoGlobRegexp(pattern string, greedy bool) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '*' && i+1 < len(pattern) && pattern[i+1] == '*':
			i++
			if i+1 < len(pattern) && pattern[i+1] == '/' {
				i++
				b.WriteString("(?:.*/)?") // **/ : zero or more directories
			} else {
				b.WriteString(".*")
			}
		case c == '*':
			if greedy {
				b.WriteString(".*")
			} else {
				b.WriteString("[^/]*")
			}
		case c == '?':
			if greedy {
				b.WriteString(".")
			} else {
				b.WriteString("[^/]")
			}
		case c == '[':
			j := strings.IndexByte(pattern[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("glob %q: unterminated [", pattern)
			}
			class := pattern[i+1 : i+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += j
		case c == '\\' && i+1 < len(pattern):
			i++
			b.WriteString(regexp.QuoteMeta(string(pattern[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// addValues adds a generator's values field: each value rendered with the parameters.
func (s *argoSet) addValues(p map[string]any, values map[string]string) error {
	if len(values) == 0 {
		return nil
	}
	rendered := map[string]any{}
	for k, v := range values {
		r, err := s.render(v, p)
		if err != nil {
			return fmt.Errorf("values.%s: %w", k, err)
		}
		rendered[k] = r
	}
	if s.goTemplate {
		p["values"] = rendered
		return nil
	}
	for k, v := range rendered {
		p["values."+k] = v
	}
	return nil
}
