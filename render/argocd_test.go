package render

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitgate/gitgate/policy"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The repository the Argo CD tests discover in: testdata/argocd/repo is shaped like the
// seed's GitOps repository (apps/<svc>/base, apps/<svc>/overlays/{dev,staging,production},
// charts/order-service, environments/<env>/order-service/values.yaml) with all four
// services of the seed's ApplicationSet, plus clusters/*/config.json for the git files
// generator and manifests/plain for directory sources.
const (
	argoTestRepoDir = "testdata/argocd/repo"
	argoTestURL     = "https://gitlab.internal.company.com/platform/gitops-manifests.git"
	argoTestFile    = "argocd/apps.yaml"
)

func argoRepo(dir string, clusters ...policy.ClusterConfig) Repo {
	return Repo{FS: os.DirFS(dir), Dir: dir, Clusters: clusters}
}

// kustomizeTargets lists the overlay targets the seed's service x env matrix generates.
func kustomizeTargets(file string, svcs, envs []string) []Target {
	var ts []Target
	for _, svc := range svcs {
		for _, env := range envs {
			ts = append(ts, Target{
				Name: svc + "-" + env, Kind: Kustomize, Path: "apps/" + svc + "/overlays/" + env,
				DefinedIn: file, Namespace: env,
			})
		}
	}
	SortTargets(ts)
	return ts
}

var (
	allServices = []string{"order-service", "inventory-service", "payment-service", "user-service"}
	allEnvs     = []string{"dev", "staging", "production"}
)

func TestAppTargets(t *testing.T) {
	const seedSet = "argocd/applicationsets/multi-env-apps.yaml"
	tests := []struct {
		name string
		// repo defaults to testdata/argocd/repo
		repo     string
		clusters []policy.ClusterConfig
		// file is read from disk (relative to the package) and decoded as if it were
		// the repository file as; otherwise yaml is decoded as argocd/apps.yaml.
		file, as string
		yaml     string
		opts     AppOptions
		want     []Target
		notices  []string
		errs     []string
	}{
		{
			name: "seed: matrix of two lists, service x env",
			file: argoTestRepoDir + "/" + seedSet, as: seedSet,
			// the ssh spelling of the seed's https repoURL is the same repository
			opts: AppOptions{RepoURLs: []string{"git@gitlab.internal.company.com:platform/gitops-manifests.git"}},
			want: kustomizeTargets(seedSet, allServices, allEnvs),
		},
		{
			name: "seed: matrix of two lists, repoURL inferred from the paths that exist",
			file: argoTestRepoDir + "/" + seedSet, as: seedSet,
			want: kustomizeTargets(seedSet, allServices, allEnvs),
		},
		{
			name: "seed: ApplicationSet against the seed's repository, where three services are missing",
			repo: "../testdata/seed/repo",
			file: "../testdata/seed/argocd/applicationsets/multi-env-apps.yaml", as: seedSet,
			want: kustomizeTargets(seedSet, []string{"order-service"}, allEnvs),
			errs: []string{
				seedSet + ":62:9: ApplicationSet/argocd/microservices: Application inventory-service-dev: spec.source.path apps/inventory-service/overlays/dev does not exist in this repository",
				seedSet + ":62:9: ApplicationSet/argocd/microservices: Application inventory-service-staging: spec.source.path apps/inventory-service/overlays/staging does not exist in this repository",
				seedSet + ":62:9: ApplicationSet/argocd/microservices: Application inventory-service-production: spec.source.path apps/inventory-service/overlays/production does not exist in this repository",
				seedSet + ":62:9: ApplicationSet/argocd/microservices: Application payment-service-dev: spec.source.path apps/payment-service/overlays/dev does not exist in this repository",
				seedSet + ":62:9: ApplicationSet/argocd/microservices: Application payment-service-staging: spec.source.path apps/payment-service/overlays/staging does not exist in this repository",
				seedSet + ":62:9: ApplicationSet/argocd/microservices: Application payment-service-production: spec.source.path apps/payment-service/overlays/production does not exist in this repository",
				seedSet + ":62:9: ApplicationSet/argocd/microservices: Application user-service-dev: spec.source.path apps/user-service/overlays/dev does not exist in this repository",
				seedSet + ":62:9: ApplicationSet/argocd/microservices: Application user-service-staging: spec.source.path apps/user-service/overlays/staging does not exist in this repository",
				seedSet + ":62:9: ApplicationSet/argocd/microservices: Application user-service-production: spec.source.path apps/user-service/overlays/production does not exist in this repository",
			},
		},
		{
			name: "seed: clusters generator without clusters is skipped",
			file: "../testdata/seed/argocd/applicationsets/cluster-addons.yaml", as: "argocd/applicationsets/cluster-addons.yaml",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			notices: []string{
				"the clusters generator of 1 ApplicationSet(s) is skipped: it needs the clusters listed in .gitgate.yaml (clusters:), so the Applications it would generate are not checked: argocd/applicationsets/cluster-addons.yaml:13:1 ApplicationSet/argocd/cluster-addons",
			},
		},
		{
			name:     "seed: clusters generator with clusters, source in another repository",
			clusters: []policy.ClusterConfig{{Name: "prod-eu", Server: "https://prod-eu:6443", Labels: map[string]string{"env": "production"}}, {Name: "dev", Server: "https://dev:6443", Labels: map[string]string{"env": "dev"}}},
			file:     "../testdata/seed/argocd/applicationsets/cluster-addons.yaml", as: "argocd/applicationsets/cluster-addons.yaml",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			want: []Target{{Name: "addons-prod-eu", Kind: Directory, Path: "addons", DefinedIn: "argocd/applicationsets/cluster-addons.yaml", Namespace: "kube-system",
				Jsonnet: &JsonnetOptions{}, Repo: &RemoteRepo{URL: "https://gitlab.internal.company.com/platform/cluster-addons.git", Revision: "main"}}},
		},
		{
			name: "clusters generator: label selector, name, server and labels as parameters",
			clusters: []policy.ClusterConfig{
				{Name: "prod-eu", Server: "https://prod-eu:6443", Labels: map[string]string{"env": "production", "tier": "critical"}},
				{Name: "prod-us", Server: "https://prod-us:6443", Labels: map[string]string{"env": "production"}},
				{Name: "dev", Server: "https://dev:6443", Labels: map[string]string{"env": "dev"}},
			},
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: per-cluster, namespace: argocd}
spec:
  generators:
  - clusters:
      selector:
        matchLabels: {env: production}
        matchExpressions:
        - {key: tier, operator: NotIn, values: [experimental]}
  template:
    metadata: {name: 'order-service-{{name}}'}
    spec:
      project: default
      source:
        repoURL: ` + argoTestURL + `
        path: 'apps/order-service/overlays/{{metadata.labels.env}}'
      destination: {server: '{{server}}', namespace: '{{metadata.labels.env}}'}
`,
			want: []Target{
				{Name: "order-service-prod-eu", Kind: Kustomize, Path: "apps/order-service/overlays/production", DefinedIn: argoTestFile, Namespace: "production"},
				{Name: "order-service-prod-us", Kind: Kustomize, Path: "apps/order-service/overlays/production", DefinedIn: argoTestFile, Namespace: "production"},
			},
		},
		{
			name: "git directories generator with exclude",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: overlays, namespace: argocd}
spec:
  generators:
  - git:
      repoURL: ` + argoTestURL + `
      revision: HEAD
      directories:
      - path: apps/*/overlays/*
      - path: apps/user-service/overlays/*
        exclude: true
      - path: apps/*/overlays/dev
        exclude: true
  template:
    metadata: {name: '{{path[1]}}-{{path.basename}}'}
    spec:
      project: default
      source: {repoURL: ` + argoTestURL + `, path: '{{path}}'}
      destination: {server: https://kubernetes.default.svc, namespace: '{{path.basenameNormalized}}'}
`,
			want: kustomizeTargets(argoTestFile, []string{"order-service", "inventory-service", "payment-service"}, []string{"staging", "production"}),
		},
		{
			name: "git files generator: flattened keys and path parameters, '*' spans directories as in Argo CD",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			yaml: argoFilesSet,
			want: []Target{
				{Name: "order-service-canary", Kind: Kustomize, Path: "apps/order-service/overlays/staging", DefinedIn: argoTestFile, Namespace: "canary"},
				{Name: "order-service-dev", Kind: Kustomize, Path: "apps/order-service/overlays/dev", DefinedIn: argoTestFile, Namespace: "dev"},
				{Name: "order-service-production", Kind: Kustomize, Path: "apps/order-service/overlays/production", DefinedIn: argoTestFile, Namespace: "production"},
			},
		},
		{
			name: "git files generator with the new globbing",
			opts: AppOptions{RepoURLs: []string{argoTestURL}, NewGitFileGlobbing: true},
			yaml: argoFilesSet,
			want: []Target{
				{Name: "order-service-dev", Kind: Kustomize, Path: "apps/order-service/overlays/dev", DefinedIn: argoTestFile, Namespace: "dev"},
				{Name: "order-service-production", Kind: Kustomize, Path: "apps/order-service/overlays/production", DefinedIn: argoTestFile, Namespace: "production"},
			},
		},
		{
			name: "matrix: the second generator uses the first one's parameters",
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: matrix-git, namespace: argocd}
spec:
  generators:
  - matrix:
      generators:
      - list:
          elements:
          - service: order-service
          - service: payment-service
      - git:
          repoURL: ` + argoTestURL + `
          directories:
          - path: 'apps/{{service}}/overlays/*'
  template:
    metadata: {name: '{{service}}-{{path.basename}}'}
    spec:
      source: {repoURL: ` + argoTestURL + `, path: '{{path}}'}
      destination: {namespace: '{{path.basename}}'}
`,
			want: kustomizeTargets(argoTestFile, []string{"order-service", "payment-service"}, allEnvs),
		},
		{
			name: "merge generator: overrides by merge key",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: merged, namespace: argocd}
spec:
  generators:
  - merge:
      mergeKeys: [service]
      generators:
      - list:
          elements:
          - {service: order-service, namespace: default}
          - {service: payment-service, namespace: default}
      - list:
          elements:
          - {service: payment-service, namespace: payments}
          - {service: not-in-the-base, namespace: ignored}
  template:
    metadata: {name: '{{service}}'}
    spec:
      source: {repoURL: ` + argoTestURL + `, path: 'apps/{{service}}/overlays/production'}
      destination: {namespace: '{{namespace}}'}
`,
			want: []Target{
				{Name: "order-service", Kind: Kustomize, Path: "apps/order-service/overlays/production", DefinedIn: argoTestFile, Namespace: "default"},
				{Name: "payment-service", Kind: Kustomize, Path: "apps/payment-service/overlays/production", DefinedIn: argoTestFile, Namespace: "payments"},
			},
		},
		{
			name: "goTemplate with sprig functions, templated keys and kustomize overrides",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: go-templated, namespace: argocd}
spec:
  goTemplate: true
  goTemplateOptions: ["missingkey=error"]
  generators:
  - git:
      repoURL: ` + argoTestURL + `
      directories:
      - path: apps/*/overlays/production
      - path: apps/user-service/*/*
        exclude: true
  template:
    metadata:
      name: '{{ index .path.segments 1 | trimSuffix "-service" }}-{{ .path.basename | upper | lower | trunc 4 }}'
    spec:
      source:
        repoURL: ` + argoTestURL + `
        path: '{{ .path.path }}'
        kustomize:
          namePrefix: '{{ printf "%s-" (index .path.segments 1) }}'
          commonLabels:
            'team-{{ .path.basename }}': '{{ dig "team" "platform" . }}'
          images: ['order-service=harbor.internal.company.com/apps/{{ index .path.segments 1 }}:v1.5.2']
      destination: {namespace: '{{ .path.basename | normalize }}'}
`,
			want: func() []Target {
				var ts []Target
				for _, svc := range []string{"inventory", "order", "payment"} {
					ts = append(ts, Target{
						Name: svc + "-prod", Kind: Kustomize, Path: "apps/" + svc + "-service/overlays/production",
						DefinedIn: argoTestFile, Namespace: "production",
						NamePrefix:   svc + "-service-",
						CommonLabels: map[string]string{"team-production": "platform"},
						Images:       []string{"order-service=harbor.internal.company.com/apps/" + svc + "-service:v1.5.2"},
					})
				}
				return ts
			}(),
		},
		{
			name: "goTemplate: git files x elementsYaml, templatePatch, a Chart.yaml makes a Helm target",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: charts, namespace: argocd}
spec:
  goTemplate: true
  generators:
  - matrix:
      generators:
      - git:
          repoURL: ` + argoTestURL + `
          files: [{path: 'clusters/*/config.json'}]
      - list:
          elementsYaml: |
            - chart: order-service
  template:
    metadata: {name: '{{ .chart }}-{{ .path.basename }}'}
    spec:
      source: {repoURL: ` + argoTestURL + `, path: 'charts/{{ .chart }}'}
      destination: {namespace: '{{ .cluster.namespace }}'}
  templatePatch: |
    spec:
      source:
        helm:
          valueFiles:
          {{- if ne .env "staging" }}
          - ../../environments/{{ .env }}/{{ .chart }}/values.yaml
          {{- end }}
          parameters:
          - name: replicaCount
            value: '{{ .replicas }}'
`,
			want: []Target{
				{
					Name: "order-service-canary", Kind: Helm, Path: "charts/order-service", DefinedIn: argoTestFile, Namespace: "canary",
					ReleaseName: "order-service-canary", Parameters: map[string]string{"replicaCount": "1"},
				},
				{
					Name: "order-service-dev", Kind: Helm, Path: "charts/order-service", DefinedIn: argoTestFile, Namespace: "dev",
					ReleaseName: "order-service-dev", ValueFiles: []string{"environments/dev/order-service/values.yaml"},
					Parameters: map[string]string{"replicaCount": "1"},
				},
				{
					Name: "order-service-production", Kind: Helm, Path: "charts/order-service", DefinedIn: argoTestFile, Namespace: "production",
					ReleaseName: "order-service-production", ValueFiles: []string{"environments/production/order-service/values.yaml"},
					Parameters: map[string]string{"replicaCount": "3"},
				},
			},
		},
		{
			name: "goTemplate: a missing key renders <no value> unless missingkey=error",
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: lenient, namespace: argocd}
spec:
  goTemplate: true
  generators:
  - list:
      elements:
      - {service: order-service, replicas: 3}
  template:
    metadata: {name: '{{ .service }}'}
    spec:
      source: {repoURL: ` + argoTestURL + `, path: 'apps/{{ .service }}/overlays/dev'}
      destination: {namespace: '{{ .namespace }}'}
---
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: strict, namespace: argocd}
spec:
  goTemplate: true
  goTemplateOptions: ["missingkey=error"]
  generators:
  - list:
      elements:
      - {service: payment-service}
  template:
    metadata: {name: '{{ .service }}'}
    spec:
      source: {repoURL: ` + argoTestURL + `, path: 'apps/{{ .service }}/overlays/dev'}
      destination: {namespace: '{{ .namespace }}'}
`,
			want: []Target{
				{Name: "order-service", Kind: Kustomize, Path: "apps/order-service/overlays/dev", DefinedIn: argoTestFile, Namespace: "<no value>"},
			},
			errs: []string{
				argoTestFile + `:26:3: ApplicationSet/argocd/strict: template "{{ .namespace }}": template: :1:3: executing "" at <.namespace>: map has no entry for key "namespace"`,
			},
		},
		{
			name: "fasttemplate: spaces inside braces, unknown keys left as they are, numbers refused",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: fast, namespace: argocd}
spec:
  generators:
  - list:
      elements:
      - service: order-service
        env: dev
        values: {team: orders}
  - list:
      elements:
      - {service: payment-service, replicas: 3}
  template:
    metadata: {name: '{{ service }}-{{env}}-{{values.team}}'}
    spec:
      source: {repoURL: ` + argoTestURL + `, path: 'apps/{{service}}/overlays/{{ env }}'}
      destination: {namespace: '{{ nope }}'}
`,
			want: []Target{
				{Name: "order-service-dev-orders", Kind: Kustomize, Path: "apps/order-service/overlays/dev", DefinedIn: argoTestFile, Namespace: "{{ nope }}"},
			},
			errs: []string{
				argoTestFile + ":11:5: ApplicationSet/argocd/fast: spec.generators[1]: list generator: elements[0].replicas is a number, not a string; without goTemplate Argo CD takes only strings: quote it",
			},
		},
		{
			name: "helm: multi-source with a $values ref, values, parameters; foreign values read from their repository, a remote chart its own target",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: order-service-production, namespace: argocd}
spec:
  project: default
  destination: {server: https://kubernetes.default.svc, namespace: production}
  sources:
  - repoURL: ` + argoTestURL + `
    targetRevision: main
    path: charts/order-service
    helm:
      releaseName: orders
      valueFiles:
      - values.yaml
      - $values/environments/production/order-service/values.yaml
      - $other/values.yaml
      valuesObject: {replicaCount: 5}
      parameters:
      - {name: image.tag, value: v1.5.3}
      - {name: autoscaling.enabled, value: "true", forceString: true}
  - repoURL: git@gitlab.internal.company.com:platform/gitops-manifests.git
    targetRevision: main
    ref: values
  - repoURL: https://github.com/example/shared-values.git
    ref: other
  - repoURL: https://charts.bitnami.com/bitnami
    chart: redis
    targetRevision: 18.0.0
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: order-service-dev, namespace: argocd}
spec:
  destination: {namespace: dev}
  source:
    repoURL: ` + argoTestURL + `
    path: charts/order-service
    helm:
      valueFiles: [../../environments/$ARGOCD_APP_NAMESPACE/order-service/values.yaml]
      values: |
        image:
          tag: dev
`,
			want: []Target{
				{
					Name: "order-service-dev", Kind: Helm, Path: "charts/order-service", DefinedIn: argoTestFile, Namespace: "dev",
					ReleaseName: "order-service-dev",
					ValueFiles:  []string{"environments/dev/order-service/values.yaml"},
					Values:      map[string]any{"image": map[string]any{"tag": "dev"}},
				},
				{
					Name: "order-service-production/0", Kind: Helm, Path: "charts/order-service", DefinedIn: argoTestFile, Namespace: "production",
					ReleaseName: "orders",
					ValueFiles:  []string{"charts/order-service/values.yaml", "environments/production/order-service/values.yaml", "$other/values.yaml"},
					Values:      map[string]any{"replicaCount": int64(5)},
					Parameters:  map[string]string{"image.tag": "v1.5.3", "autoscaling.enabled": "true"},
					Refs:        map[string]RemoteRepo{"$other": {URL: "https://github.com/example/shared-values.git"}},
				},
				{
					Name: "order-service-production/3", Kind: Helm, DefinedIn: argoTestFile, Namespace: "production",
					ReleaseName: "order-service-production",
					Chart:       &RemoteChart{Repo: "https://charts.bitnami.com/bitnami", Name: "redis", Version: "18.0.0"},
				},
			},
		},
		{
			name: "a path that does not exist is an error naming the file; the other Applications continue",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: typo, namespace: argocd}
spec:
  generators:
  - list:
      elements:
      - {service: order-service, env: prod}
      - {service: order-service, env: production}
  template:
    metadata: {name: '{{service}}-{{env}}'}
    spec:
      source: {repoURL: ` + argoTestURL + `, path: 'apps/{{service}}/overlays/{{env}}'}
      destination: {namespace: '{{env}}'}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: escape, namespace: argocd}
spec:
  source: {repoURL: ` + argoTestURL + `, path: ../outside}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: unset, namespace: argocd}
spec:
  source: {repoURL: ` + argoTestURL + `, path: 'apps/{{service}}'}
`,
			want: []Target{
				{Name: "order-service-production", Kind: Kustomize, Path: "apps/order-service/overlays/production", DefinedIn: argoTestFile, Namespace: "production"},
			},
			errs: []string{
				argoTestFile + ":13:92: ApplicationSet/argocd/typo: Application order-service-prod: spec.source.path apps/order-service/overlays/prod does not exist in this repository",
				argoTestFile + ":20:88: Application/argocd/escape: spec.source.path ../outside: ../outside is outside the repository",
				argoTestFile + ":26:88: Application/argocd/unset: spec.source.path apps/{{service}} does not exist in this repository (a template parameter in it was not set by the generators)",
			},
		},
		{
			name: "another repository's source is a target of that repository (rendered through Remotes)",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook, namespace: argocd}
spec:
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps.git
    path: guestbook
`,
			want: []Target{{Name: "guestbook", Kind: Directory, Path: "guestbook", DefinedIn: argoTestFile, Jsonnet: &JsonnetOptions{},
				Repo: &RemoteRepo{URL: "https://github.com/argoproj/argocd-example-apps.git"}}},
		},
		{
			name: "repoURLs inferred: a repoURL none of whose paths exists here is another repository",
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook, namespace: argocd}
spec:
  source: {repoURL: https://github.com/argoproj/argocd-example-apps.git, path: guestbook}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: plain, namespace: argocd}
spec:
  source: {repoURL: ` + argoTestURL + `, path: manifests/plain}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: broken, namespace: argocd}
spec:
  source: {repoURL: ` + argoTestURL + `, path: manifests/missing}
`,
			want: []Target{
				{Name: "guestbook", Kind: Directory, Path: "guestbook", DefinedIn: argoTestFile, Jsonnet: &JsonnetOptions{}, Repo: &RemoteRepo{URL: "https://github.com/argoproj/argocd-example-apps.git"}},
				{Name: "plain", Kind: Directory, Path: "manifests/plain", DefinedIn: argoTestFile, Jsonnet: &JsonnetOptions{}},
			},
			notices: []string{
				argoTestFile + ":5:12: Application/argocd/guestbook: spec.source: repoURL https://github.com/argoproj/argocd-example-apps.git: another repository (no repoURLs configured and none of its paths exists here; list this repository's URLs in .gitgate.yaml if it is this one)",
			},
			errs: []string{
				argoTestFile + ":17:88: Application/argocd/broken: spec.source.path manifests/missing does not exist in this repository",
			},
		},
		{
			name: "multi-source Application: one target per local source, directory options",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: combined, namespace: argocd}
spec:
  destination: {namespace: shop}
  sources:
  - repoURL: ` + argoTestURL + `
    path: manifests/plain
    directory: {recurse: true, include: '*.yaml', exclude: 'nested/*'}
  - repoURL: ` + argoTestURL + `
    path: ./apps/order-service/overlays/../overlays/staging/
    kustomize: {namespace: orders, nameSuffix: -v2, commonAnnotations: {team: orders}}
  - repoURL: ` + argoTestURL + `
    path: apps/order-service/base
    plugin: {name: envsubst}
`,
			want: []Target{
				{Name: "combined/0", Kind: Directory, Path: "manifests/plain", DefinedIn: argoTestFile, Namespace: "shop", Recurse: true, Include: "*.yaml", Exclude: "nested/*", Jsonnet: &JsonnetOptions{}},
				{Name: "combined/1", Kind: Kustomize, Path: "apps/order-service/overlays/staging", DefinedIn: argoTestFile, Namespace: "orders", NameSuffix: "-v2"},
				{Name: "combined/2", Kind: Plugin, Path: "apps/order-service/base", DefinedIn: argoTestFile, Namespace: "shop"},
			},
			notices: []string{
				argoTestFile + ":12:5: Application/argocd/combined: spec.sources[1].kustomize: commonAnnotations not applied offline",
			},
		},
		{
			name: "generators that need a live Argo CD are skipped with a notice",
			opts: AppOptions{RepoURLs: []string{argoTestURL}},
			yaml: `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: previews, namespace: argocd}
spec:
  generators:
  - pullRequest:
      gitlab: {project: "42"}
  - matrix:
      generators:
      - list: {elements: [{env: dev}]}
      - scmProvider: {github: {organization: example}}
  template:
    metadata: {name: 'preview-{{number}}'}
    spec:
      source: {repoURL: ` + argoTestURL + `, path: apps/order-service/overlays/dev}
`,
			notices: []string{
				argoTestFile + ":6:5: ApplicationSet/argocd/previews: pullRequest generator needs a live Argo CD and its services; skipped",
				argoTestFile + ":11:9: ApplicationSet/argocd/previews: scmProvider generator needs a live Argo CD and its services; skipped",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.repo
			if dir == "" {
				dir = argoTestRepoDir
			}
			name, data := argoTestFile, []byte(tc.yaml)
			if tc.file != "" {
				var err error
				if data, err = os.ReadFile(filepath.FromSlash(tc.file)); err != nil {
					t.Fatal(err)
				}
				name = tc.as
			}
			apps, err := policy.Decode(name, data)
			if err != nil {
				t.Fatal(err)
			}
			got, notices, errs := AppTargets(argoRepo(dir, tc.clusters...), apps, tc.opts)
			// Destinations are TestDestinationTargets' subject.
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(Target{}, "Destination")); diff != "" {
				t.Errorf("targets (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tc.notices, notices); diff != "" {
				t.Errorf("notices (-want +got)\n%s", diff)
			}
			var gotErrs []string
			for _, err := range errs {
				var ae *AppError
				if !errors.As(err, &ae) {
					t.Errorf("error %v is not an *AppError", err)
				}
				gotErrs = append(gotErrs, err.Error())
			}
			if diff := cmp.Diff(tc.errs, gotErrs); diff != "" {
				t.Errorf("errors (-want +got)\n%s", diff)
			}
		})
	}
}

const argoFilesSet = `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: per-env-config, namespace: argocd}
spec:
  generators:
  - git:
      repoURL: ` + argoTestURL + `
      files:
      - path: clusters/*/config.json
  template:
    metadata: {name: 'order-service-{{path.basename}}'}
    spec:
      source: {repoURL: ` + argoTestURL + `, path: 'apps/order-service/overlays/{{env}}'}
      destination: {server: '{{cluster.server}}', namespace: '{{cluster.namespace}}'}
`

func TestArgoFastReplace(t *testing.T) {
	params := map[string]any{"service": "order-service", "path.basename": "dev", "path[1]": "order-service", "n": 3}
	tests := []struct {
		name, in, want, err string
	}{
		{name: "plain", in: "{{service}}-{{path.basename}}", want: "order-service-dev"},
		{name: "spaces", in: "{{ service }}/{{\tpath[1] }}", want: "order-service/order-service"},
		{name: "unknown key stays", in: "{{ nope }}-{{}}", want: "{{ nope }}-{{}}"},
		{name: "non-string parameter stays", in: "{{n}}", want: "{{n}}"},
		{name: "no tags", in: "apps/x", want: "apps/x"},
		{name: "unclosed tag", in: "{{service", err: `template "{{service": cannot find end tag "}}"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := argoFastReplace(tc.in, params)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tc.err, gotErr); diff != "" {
				t.Errorf("error (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestArgoNormalizeURL(t *testing.T) {
	const want = "gitlab.internal.company.com/platform/gitops-manifests"
	for _, u := range []string{
		"https://gitlab.internal.company.com/platform/gitops-manifests.git",
		"https://GitLab.internal.company.com/platform/gitops-manifests/",
		"ssh://git@gitlab.internal.company.com:2222/platform/gitops-manifests.git",
		"git@gitlab.internal.company.com:platform/gitops-manifests.git",
		"https://user:token@gitlab.internal.company.com:443/platform/gitops-manifests",
	} {
		t.Run(u, func(t *testing.T) {
			if diff := cmp.Diff(want, argoNormalizeURL(u)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestChildApps(t *testing.T) {
	rendered, err := policy.Decode("apps/root/templates/children.yaml", []byte(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: child, namespace: argocd}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-an-app}
---
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: child-set, namespace: argocd}
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: platform, namespace: argocd}
---
apiVersion: example.com/v1
kind: Application
metadata: {name: other-group}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range ChildApps(rendered) {
		got = append(got, r.ID()+"@"+r.Origin.String())
	}
	want := []string{
		"Application/argocd/child@apps/root/templates/children.yaml:1:1",
		"ApplicationSet/argocd/child-set@apps/root/templates/children.yaml:9:1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}
