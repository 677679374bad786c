package kustomization

import (
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/git"
)

// remote builds the expected RemoteBase with kustomize's query defaults.
func remote(repo, ref, dir string) RemoteBase {
	return RemoteBase{Repo: repo, Ref: ref, Path: dir, Submodules: DefaultRemoteSubmodules, Timeout: DefaultRemoteTimeout}
}

// The forms kustomize's repository-spec tests accept, with kustomize's CloneSpec() as
// Repo, KustRootPath (cleaned, no leading slash) as Path and Ref as Ref.
func TestParseRemoteBaseAccepted(t *testing.T) {
	cases := []struct {
		in   string
		want RemoteBase
	}{
		// GitHub: org/repo are the first two segments unless // or .git says otherwise.
		{"https://github.com/org/repo//path?ref=v1.2", remote("https://github.com/org/repo", "v1.2", "path")},
		{"https://github.com/org/repo/deploy/base?ref=v1.2", remote("https://github.com/org/repo", "v1.2", "deploy/base")},
		{"https://github.com/org/repo?ref=main", remote("https://github.com/org/repo", "main", "")},
		{"http://github.com/org/repo/dir", remote("https://github.com/org/repo", "", "dir")},
		{"http://github.com/org/repo.git/dir", remote("https://github.com/org/repo.git", "", "dir")},
		{"HTTPS://GitHub.com/org/repo", remote("https://github.com/org/repo", "", "")},
		{"https://github.com:443/org/repo", remote("https://github.com/org/repo", "", "")},
		{"github.com/org/repo/path?ref=v3", remote("https://github.com/org/repo", "v3", "path")},
		{"gitHub.com:org/repo/a/b", remote("https://github.com/org/repo", "", "a/b")},
		{"git@github.com:org/repo//path?ref=", remote("git@github.com:org/repo", "", "path")},
		{"git@github.com:org/repo.git/dir", remote("git@github.com:org/repo.git", "", "dir")},
		{"git@github.com/org/repo/dir", remote("git@github.com:org/repo", "", "dir")},
		{"git::git@github.com:org/repo", remote("git@github.com:org/repo", "", "")},
		{"ssh://git@github.com/org/repo//examples/dev?ref=v1.0.6", remote("git@github.com:org/repo", "v1.0.6", "examples/dev")},
		{"ssh://ca-user-7@github.com/org/repo", remote("ca-user-7@github.com:org/repo", "", "")},
		{"ca-user-7@github.com/org/repo", remote("ca-user-7@github.com:org/repo", "", "")},
		{"https://someone@github.com/org/repo", remote("someone@github.com:org/repo", "", "")},
		{"https://github.com/org/repo//examples/multibases/dev/?ref=v1.0.6", remote("https://github.com/org/repo", "v1.0.6", "examples/multibases/dev")},
		// Other hosts.
		{"https://codecommit.example.com/team/app/overlays/prod?ref=release", remote("https://codecommit.example.com/team/app", "release", "overlays/prod")},
		{"https://legacy.visualstudio.com/team/app?ref=master", remote("https://legacy.visualstudio.com/team/app", "master", "")},
		{"https://host.example/group/sub/repo//deploy", remote("https://host.example/group/sub/repo", "", "deploy")},
		{"https://host.example/group/sub/repo.git/deploy/base", remote("https://host.example/group/sub/repo.git", "", "deploy/base")},
		{"https://scm.example.com/scm/proj/repository.git", remote("https://scm.example.com/scm/proj/repository.git", "", "")},
		{"git::https://gitlab.example.com/team/app.git//k8s?ref=v2", remote("https://gitlab.example.com/team/app.git", "v2", "k8s")},
		{"GIT::http://git.example.com/team/app", remote("http://git.example.com/team/app", "", "")},
		{"git@gitlab.example.com:infra/kubernetes/thanos.git?ref=v0.1.0", remote("git@gitlab.example.com:infra/kubernetes/thanos.git", "v0.1.0", "")},
		{"git@bitbucket.example.org:company/project.git//path?ref=branch", remote("git@bitbucket.example.org:company/project.git", "branch", "path")},
		{"git@gitlab.example.com:group/project", remote("git@gitlab.example.com:group/project", "", "")},
		{"git@gist.github.com:0123abcd.git", remote("git@gist.github.com:0123abcd.git", "", "")},
		{"https://gist.github.com/0123abcd.git", remote("https://gist.github.com/0123abcd.git", "", "")},
		{"ssh://git@bitbucket.example.org/company/project.git//path?ref=branch", remote("ssh://git@bitbucket.example.org/company/project.git", "branch", "path")},
		{"ssh://codecommit.example.com/team/app/sub", remote("ssh://codecommit.example.com/team/app", "", "sub")},
		{"ssh://git.example.com:7999/team/app/sub", remote("ssh://git.example.com:7999/team/app", "", "sub")},
		{"ssh://git@ssh.github.com:443/someone/repo.git", remote("ssh://git@ssh.github.com:443/someone/repo.git", "", "")},
		{"ssh://alice@example.com/path/to/repo//examples/dev", remote("ssh://alice@example.com/path/to/repo", "", "examples/dev")},
		{"http://git@home.example/path/to/repo.git//path?ref=b", remote("http://git@home.example/path/to/repo.git", "b", "path")},
		// Azure DevOps: _git/<repo> ends the repository.
		{"https://user@dev.azure.com/org/project/_git/repo//path/to/root", remote("https://user@dev.azure.com/org/project/_git/repo", "", "path/to/root")},
		{"https://org.visualstudio.com/project/_git/repo/path/to/root", remote("https://org.visualstudio.com/project/_git/repo", "", "path/to/root")},
		{"https://tfs.example.com/collection/project/_git/repos/dir?version=v1.0.0", remote("https://tfs.example.com/collection/project/_git/repos", "v1.0.0", "dir")},
		{"git::https://tfs.example.com/collection/project/_git/repos", remote("https://tfs.example.com/collection/project/_git/repos", "", "")},
		// file://: the whole path is the repository unless a marker splits it.
		{"file:///abs/repo//path", remote("file:///abs/repo", "", "path")},
		{"file:///abs/repo/sub/dir", remote("file:///abs/repo/sub/dir", "", "")},
		{"file:///a/b/someRepo?ref=someBranch", remote("file:///a/b/someRepo", "someBranch", "")},
		{"file://a/b/someRepo.git/somepath?ref=x", remote("file://a/b/someRepo.git", "x", "somepath")},
		{"file://git@home/path/to/repository.git//path?ref=branch", remote("file://git@home/path/to/repository.git", "branch", "path")},
		{"file:///", remote("file:///", "", "")},
		// Queries: markers inside the query do not split; ref wins over version.
		{"https://host.example/org/repo?ref=group/version", remote("https://host.example/org/repo", "group/version", "")},
		{"https://host.example/org/repo/?ref=includes_git/x", remote("https://host.example/org/repo", "includes_git/x", "")},
		{"https://host.example/org/repo/?ref=includes.git/x", remote("https://host.example/org/repo", "includes.git/x", "")},
		{"https://host.example/org/repo?version=main&ref=v1.0.0", remote("https://host.example/org/repo", "v1.0.0", "")},
		{"https://host.example/org/repo?version=main", remote("https://host.example/org/repo", "main", "")},
		// Paths are cleaned; ".." that stays inside is fine; a non-YAML file name is a path.
		{"https://github.com/org/repo//a/./b/../c/", remote("https://github.com/org/repo", "", "a/c")},
		{"https://github.com/org/repo/README.md", remote("https://github.com/org/repo", "", "README.md")},
		{"https://host.example/org/repo/%-not-url-parsable/x.Parse", remote("https://host.example/org/repo", "", "%-not-url-parsable/x.Parse")},
		// A YAML name with a ref= is still a repository path (kustomize: a 404 on GET, then the clone).
		{"https://github.com/org/repo/app.yaml?ref=v1", remote("https://github.com/org/repo", "v1", "app.yaml")},
		// ".git" is a substring marker in kustomize, so foo.github.io splits after ".git".
		{"https://host.example/org/foo.github.io/dir", remote("https://host.example/org/foo.git", "", "hub.io/dir")},
	}
	for _, c := range cases {
		got, ok, err := ParseRemoteBase(c.in)
		if err != nil || !ok {
			t.Errorf("ParseRemoteBase(%q) = ok %v, err %v; want a remote base", c.in, ok, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseRemoteBase(%q)\n got %+v\nwant %+v", c.in, got, c.want)
		}
		ep, err := git.ParseURL(got.Repo)
		if err != nil || ep.Kind == git.Local {
			t.Errorf("ParseRemoteBase(%q).Repo %q: git.ParseURL = %v, %v; want a remote URL", c.in, got.Repo, ep.Kind, err)
		}
	}
}

// Strings kustomize does not clone: local paths and plain files fetched over HTTP.
func TestParseRemoteBaseNotRemote(t *testing.T) {
	for _, in := range []string{
		"",
		"../base",
		"../../tmp",
		"base",
		"./overlays/prod",
		"/tmp",
		"deployment.yaml",
		"src/github.com/org/repo/path", // github.com not at the start
		"github.com!org/repo.git//path",
		"gh:org/repo",   // an old go-getter alias kustomize dropped
		"host:org/repo", // scp-like without a user: kustomize wants one off GitHub
		"iauhsdiuashduas",
		"https://raw.githubusercontent.com/org/repo/main/deploy/app.yaml",
		"https://example.com/manifests/crds.yml",
		"https://example.com/org/repo/policy.JSON",
		"https://github.com/thisisa404.yaml", // one segment: not a repository, a file URL
		"https://example.com/only",
	} {
		got, ok, err := ParseRemoteBase(in)
		if ok || err != nil {
			t.Errorf("ParseRemoteBase(%q) = %+v, ok %v, err %v; want not remote, no error", in, got, ok, err)
		}
	}
}

// Strings meant as a repository that kustomize (or gitgate, see ParseRemoteBase) refuses.
func TestParseRemoteBaseRefused(t *testing.T) {
	cases := []struct{ in, msg string }{
		{"https://github.com/org/repo.git//path/../../exits/repo", "leaves the repository"},
		{"https://github.com/org/repo//..", "leaves the repository"},
		{"git@github.com:org/repo//a/../../b", "leaves the repository"},
		{"file:///abs/repo//../../etc", "leaves the repository"},
		{"https://github.com/org/repo///../x", "leaves the repository"},
		{"htxxxtp://github.com/org/repo", "unsupported scheme"},
		{"ftp://example.com/org/repo", "unsupported scheme"},
		{"oci://registry.example/org/repo", "unsupported scheme"},
		{"git::___", "unsupported scheme"},
		{"ssh://git.example.com", "no repository"},
		{"https://host?ref=group/version/minor", "no repository"},
		{"github.com/org", "no repository"},
		{"git@gitlab.example.com:repo", "no repository"},
		{"file:////tmp//path/to/whatever", "no repository"},
		{"git@scp://github.com/org/repo.git//path", "no repository"},
		{"git@ssh://github.com/org/repo.git//path", "no repository"},
		{"git@bitbucket.example.org/company/project.git//path", "needs ':'"},
		{"git@gitlab.example.com/user:name/repo.git/path", "needs ':'"},
		{"https://github.com/org/repo?ref=%zz", "unreadable query"},
		{"https://", "no host"},
	}
	for _, c := range cases {
		got, ok, err := ParseRemoteBase(c.in)
		if err == nil || ok {
			t.Errorf("ParseRemoteBase(%q) = %+v, ok %v; want an error containing %q", c.in, got, ok, c.msg)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), c.in) {
			t.Errorf("ParseRemoteBase(%q) error %q; want it to name the input and say %q", c.in, err, c.msg)
		}
	}
}

// Query values as kustomize reads them: bad or empty values keep the defaults.
func TestParseRemoteBaseQuery(t *testing.T) {
	cases := []struct {
		query      string
		ref        string
		timeout    time.Duration
		submodules bool
	}{
		{"", "", DefaultRemoteTimeout, true},
		{"ref=v1.0.0", "v1.0.0", DefaultRemoteTimeout, true},
		{"ref=kustomize/v4.5.7", "kustomize/v4.5.7", DefaultRemoteTimeout, true},
		{"version=master&ref=v1.0.0", "v1.0.0", DefaultRemoteTimeout, true},
		{"version=master&ref=", "master", DefaultRemoteTimeout, true},
		{"version=master&submodules=", "master", DefaultRemoteTimeout, true},
		{"version=master&submodules=maybe", "master", DefaultRemoteTimeout, true},
		{"submodules=true", "", DefaultRemoteTimeout, true},
		{"submodules=false", "", DefaultRemoteTimeout, false},
		{"submodules=0", "", DefaultRemoteTimeout, false},
		{"timeout=", "", DefaultRemoteTimeout, true},
		{"timeout=jiffy", "", DefaultRemoteTimeout, true},
		{"timeout=0", "", DefaultRemoteTimeout, true},
		{"timeout=0s", "", DefaultRemoteTimeout, true},
		{"timeout=-5", "", DefaultRemoteTimeout, true},
		{"timeout=61", "", 61 * time.Second, true},
		{"timeout=1m1s", "", 61 * time.Second, true},
		{"version=master&submodules=false&timeout=1m1s", "master", 61 * time.Second, false},
	}
	for _, c := range cases {
		in := "https://github.com/org/repo//dir?" + c.query
		got, ok, err := ParseRemoteBase(in)
		if err != nil || !ok {
			t.Errorf("ParseRemoteBase(%q) = ok %v, err %v", in, ok, err)
			continue
		}
		want := RemoteBase{Repo: "https://github.com/org/repo", Path: "dir", Ref: c.ref, Timeout: c.timeout, Submodules: c.submodules}
		if got != want {
			t.Errorf("ParseRemoteBase(%q)\n got %+v\nwant %+v", in, got, want)
		}
	}
}

// Every host form × repository × directory × ref, as kustomize's permutation test does:
// the parts come back whatever the combination.
func TestParseRemoteBasePermutations(t *testing.T) {
	hosts := []struct{ raw, repoPrefix string }{
		{"gitHub.com/", "https://github.com/"},
		{"github.com:", "https://github.com/"},
		{"http://github.com/", "https://github.com/"},
		{"hTTps://github.com/", "https://github.com/"},
		{"https://codecommit.example.com/", "https://codecommit.example.com/"},
		{"ssh://git.example.com:7999/", "ssh://git.example.com:7999/"},
		{"git::https://gitlab.example.com/", "https://gitlab.example.com/"},
		{"git::http://git.example.com/", "http://git.example.com/"},
		{"git@github.com:", "git@github.com:"},
		{"git@github.com/", "git@github.com:"},
		{"git::git@github.com:", "git@github.com:"},
		{"org-12345@github.com/", "org-12345@github.com:"},
		{"git@gitlab.example.com:", "git@gitlab.example.com:"},
	}
	repos := []string{"someOrg/someRepo", "kubernetes/website"}
	dirs := []string{"", "README.md", "foo/krusty.txt", "overlays/prod"}
	refs := []string{"", "group/version", "v0.1.0"}
	n := 0
	for _, h := range hosts {
		for _, repo := range repos {
			for _, dir := range dirs {
				for _, ref := range refs {
					in := h.raw + repo
					if dir != "" {
						in += "/" + dir
					}
					if ref != "" {
						in += "?ref=" + ref
					}
					got, ok, err := ParseRemoteBase(in)
					n++
					if err != nil || !ok {
						t.Errorf("ParseRemoteBase(%q) = ok %v, err %v", in, ok, err)
						continue
					}
					if want := remote(h.repoPrefix+repo, ref, dir); got != want {
						t.Errorf("ParseRemoteBase(%q)\n got %+v\nwant %+v", in, got, want)
					}
				}
			}
		}
	}
	if n != len(hosts)*len(repos)*len(dirs)*len(refs) {
		t.Fatalf("ran %d combinations", n)
	}
}
