package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ClusterSecretLabel marks Argo CD's cluster Secrets (declarative setup: data name,
// server, config).
const ClusterSecretLabel = "argocd.argoproj.io/secret-type"

// Cluster is one destination cluster of sync and report.
type Cluster struct {
	Name   string
	Server string
	Labels map[string]string
	// From says where the cluster was defined: "--kubeconfig", ".gitgate.yaml context
	// prod", "Secret argocd/prod".
	From string
	// Client reaches the cluster; nil when Err says why it cannot be.
	Client client.Client
	Err    error
	local  bool
}

func (c *Cluster) String() string {
	if c.Server != "" && c.Name != c.Server {
		return fmt.Sprintf("cluster %s (%s)", c.Name, c.Server)
	}
	return "cluster " + c.Name
}

// Clusters are the clusters a run reaches, the local one first.
type Clusters struct {
	List []*Cluster
	// Notices are definitions left out (a duplicate, a Secret without a server).
	Notices []string
}

// ClusterConnect builds a client for a rest.Config (the caller sets QPS, user agent).
type ClusterConnect func(*rest.Config) (client.Client, error)

// NewClusters starts the set with the local cluster (--kubeconfig or in-cluster): Argo
// CD's in-cluster, https://kubernetes.default.svc.
func NewClusters(local client.Client) *Clusters {
	return &Clusters{List: []*Cluster{{Name: render.LocalName, Server: render.LocalServer, From: "--kubeconfig", Client: local, local: true}}}
}

// Local is the cluster gitgate runs against.
func (cs *Clusters) Local() *Cluster { return cs.List[0] }

// add keeps the first definition of a name or a server; a later one with credentials
// completes a first without (a .gitgate.yaml entry naming only a server, then its Secret).
func (cs *Clusters) add(c *Cluster) {
	for _, o := range cs.List {
		if o.Name == c.Name || sameServer(o.Server, c.Server) {
			if o.Client == nil && o.Err == nil && !o.local && sameServer(o.Server, c.Server) {
				o.Client, o.Err, o.From = c.Client, c.Err, o.From+" + "+c.From
				for k, v := range c.Labels {
					if _, ok := o.Labels[k]; !ok {
						if o.Labels == nil {
							o.Labels = map[string]string{}
						}
						o.Labels[k] = v
					}
				}
				return
			}
			if o.local && sameServer(o.Server, c.Server) && c.Client == nil {
				// Argo CD's Secret for in-cluster only names and labels it.
				o.Name, o.Labels, o.From = c.Name, c.Labels, o.From+" + "+c.From
				return
			}
			cs.Notices = append(cs.Notices, fmt.Sprintf("%s from %s: already defined by %s; left out", c, c.From, o.From))
			return
		}
	}
	cs.List = append(cs.List, c)
}

func sameServer(a, b string) bool {
	return a != "" && strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

// Resolve finds an app's destination cluster as Argo CD does: by server when the
// destination has one, else by name; an empty destination is the local cluster.
func (cs *Clusters) Resolve(d render.Destination) (*Cluster, error) {
	if d.Server != "" {
		for _, c := range cs.List {
			if sameServer(c.Server, d.Server) {
				return c, nil
			}
		}
		if d.Local() {
			return cs.Local(), nil
		}
	} else {
		for _, c := range cs.List {
			if c.Name == d.Name {
				return c, nil
			}
		}
		if d.Local() {
			return cs.Local(), nil
		}
	}
	return nil, fmt.Errorf("destination %s matches no cluster: add it to clusters: in .gitgate.yaml (name, server, context: a kubeconfig context) or as an Argo CD cluster Secret in the --cluster-secrets namespace", d)
}

// Configs are the clusters as the ApplicationSet clusters generator iterates them (the
// ones .gitgate.yaml and Argo CD's Secrets define, with their labels).
func (cs *Clusters) Configs() []policy.ClusterConfig {
	var out []policy.ClusterConfig
	for _, c := range cs.List {
		if c.local && c.From == "--kubeconfig" {
			continue // no Secret or entry names it: as the clusters generator does today
		}
		out = append(out, policy.ClusterConfig{Name: c.Name, Server: c.Server, Labels: c.Labels})
	}
	return out
}

// AddConfigs adds .gitgate.yaml's clusters: an entry with a context is reached through
// that context of the kubeconfig (kubeconfig: a path, or "" for $KUBECONFIG and
// ~/.kube/config); one without is only named (a Secret may give its credentials).
// Nothing is executed: a context whose user runs a command (exec, auth-provider) is
// refused, naming the cluster.
func (cs *Clusters) AddConfigs(cfgs []policy.ClusterConfig, kubeconfig string, connect ClusterConnect) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	for _, cc := range cfgs {
		c := &Cluster{Name: cc.Name, Server: cc.Server, Labels: cc.Labels, From: ".gitgate.yaml"}
		if cc.Context != "" {
			c.From = ".gitgate.yaml context " + cc.Context
			cfg, server, err := contextConfig(rules, cc.Context)
			if err != nil {
				c.Err = fmt.Errorf("%s: %w", c, err)
			} else {
				if c.Server == "" {
					c.Server = server
				}
				c.Client, c.Err = connectCluster(c, cfg, connect)
			}
		}
		if c.Name == "" {
			c.Name = c.Server
		}
		cs.add(c)
	}
}

func contextConfig(rules *clientcmd.ClientConfigLoadingRules, name string) (*rest.Config, string, error) {
	raw, err := rules.Load()
	if err != nil {
		return nil, "", fmt.Errorf("read the kubeconfig: %w", err)
	}
	kctx, ok := raw.Contexts[name]
	if !ok {
		return nil, "", fmt.Errorf("context %q is not in the kubeconfig (--kubeconfig or $KUBECONFIG); kubectl config get-contexts lists them", name)
	}
	if u := raw.AuthInfos[kctx.AuthInfo]; u != nil && (u.Exec != nil || u.AuthProvider != nil) {
		return nil, "", fmt.Errorf("context %q authenticates by running a command (user %s: exec or auth-provider), and gitgate executes nothing: give it a token or a client certificate", name, kctx.AuthInfo)
	}
	server := ""
	if cl := raw.Clusters[kctx.Cluster]; cl != nil {
		server = cl.Server
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, name, &clientcmd.ConfigOverrides{}, rules).ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("context %q: %w", name, err)
	}
	return cfg, server, nil
}

func connectCluster(c *Cluster, cfg *rest.Config, connect ClusterConnect) (client.Client, error) {
	if cfg.ExecProvider != nil || cfg.AuthProvider != nil {
		return nil, fmt.Errorf("%s authenticates by running a command, and gitgate executes nothing: give it a token or a client certificate", c)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second // a cluster that does not answer fails its apps, not the run
	}
	cl, err := connect(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c, err)
	}
	return cl, nil
}

// argoClusterConfig is the config JSON of Argo CD's cluster Secret.
type argoClusterConfig struct {
	BearerToken     string `json:"bearerToken"`
	Username        string `json:"username"`
	Password        string `json:"password"`
	TLSClientConfig struct {
		CAData     []byte `json:"caData"`
		CertData   []byte `json:"certData"`
		KeyData    []byte `json:"keyData"`
		Insecure   bool   `json:"insecure"`
		ServerName string `json:"serverName"`
	} `json:"tlsClientConfig"`
	ExecProviderConfig json.RawMessage `json:"execProviderConfig"`
	AWSAuthConfig      json.RawMessage `json:"awsAuthConfig"`
}

// AddSecrets adds the clusters of Argo CD's cluster Secrets in namespace of the local
// cluster. A Secret that cannot be used is a cluster with Err (naming the Secret, never
// its data), so its apps fail and the others sync.
func (cs *Clusters) AddSecrets(ctx context.Context, namespace string, connect ClusterConnect) error {
	var list corev1.SecretList
	if err := cs.Local().Client.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabels{ClusterSecretLabel: "cluster"}); err != nil {
		return fmt.Errorf("list Argo CD cluster Secrets in namespace %s: %w", namespace, err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	for i := range list.Items {
		if c := ClusterFromSecret(&list.Items[i], connect); c != nil {
			cs.add(c)
		} else {
			cs.Notices = append(cs.Notices, fmt.Sprintf("Secret %s/%s has no server; left out", namespace, list.Items[i].Name))
		}
	}
	return nil
}

// ClusterFromSecret reads one Argo CD cluster Secret; nil when it names no server.
func ClusterFromSecret(sec *corev1.Secret, connect ClusterConnect) *Cluster {
	server := strings.TrimSpace(string(sec.Data["server"]))
	if server == "" {
		return nil
	}
	c := &Cluster{Name: strings.TrimSpace(string(sec.Data["name"])), Server: server, Labels: sec.Labels, From: "Secret " + sec.Namespace + "/" + sec.Name}
	if c.Name == "" {
		c.Name = server
	}
	if (render.Destination{Server: server}).Local() && len(sec.Data["config"]) == 0 {
		return c // names and labels in-cluster
	}
	var ac argoClusterConfig
	if err := json.Unmarshal(sec.Data["config"], &ac); err != nil {
		// json's message may quote the data: say only where it is.
		c.Err = fmt.Errorf("%s (%s): data.config is not Argo CD's cluster config JSON", c, c.From)
		return c
	}
	if len(ac.ExecProviderConfig) > 0 && string(ac.ExecProviderConfig) != "null" || len(ac.AWSAuthConfig) > 0 && string(ac.AWSAuthConfig) != "null" {
		c.Err = fmt.Errorf("%s (%s): execProviderConfig and awsAuthConfig run a command, and gitgate executes nothing: give it a bearerToken or a client certificate", c, c.From)
		return c
	}
	cfg := &rest.Config{
		Host:        server,
		BearerToken: ac.BearerToken,
		Username:    ac.Username,
		Password:    ac.Password,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: ac.TLSClientConfig.CAData, CertData: ac.TLSClientConfig.CertData, KeyData: ac.TLSClientConfig.KeyData,
			Insecure: ac.TLSClientConfig.Insecure, ServerName: ac.TLSClientConfig.ServerName,
		},
	}
	c.Client, c.Err = connectCluster(c, cfg, connect)
	return c
}

// ClusterStatus is one cluster's line of a sync or report across clusters.
type ClusterStatus struct {
	Name      string `json:"name"`
	Server    string `json:"server,omitempty"`
	From      string `json:"from,omitempty"`
	Apps      int    `json:"apps"`
	Synced    int    `json:"synced"`
	OutOfSync int    `json:"outOfSync"`
	Blocked   int    `json:"blocked"`
	Failed    int    `json:"failed"`
	Error     string `json:"error,omitempty"`
}

func (s ClusterStatus) String() string {
	name := s.Name
	if s.Server != "" && s.Server != s.Name {
		name += " (" + s.Server + ")"
	}
	line := fmt.Sprintf("cluster %s: %d apps, %d synced, %d out of sync, %d blocked, %d failed", name, s.Apps, s.Synced, s.OutOfSync, s.Blocked, s.Failed)
	if s.Error != "" {
		line += "; error: " + s.Error
	}
	return line
}

// ReportLine is the status as a drift report says it (Synced: in sync, no enforced
// violation; OutOfSync: drift or violations; Failed: errors).
func (s ClusterStatus) ReportLine() string {
	name := s.Name
	if s.Server != "" && s.Server != s.Name {
		name += " (" + s.Server + ")"
	}
	line := fmt.Sprintf("cluster %s: %d apps, %d in sync, %d drifted or violating, %d failed", name, s.Apps, s.Synced, s.OutOfSync, s.Failed)
	if s.Error != "" {
		line += "; error: " + s.Error
	}
	return line
}

// group assigns apps to their destination clusters: apps[i] goes to the cluster at
// index of[i] in cs.List, or -1 with the error in errs[i].
func (cs *Clusters) group(apps []App) (of []int, errs []error) {
	of, errs = make([]int, len(apps)), make([]error, len(apps))
	idx := map[*Cluster]int{}
	for i, c := range cs.List {
		idx[c] = i
	}
	for i, a := range apps {
		c, err := cs.Resolve(a.Destination)
		if err != nil {
			of[i], errs[i] = -1, fmt.Errorf("%s (%s): %w", a, a.DefinedIn, err)
			continue
		}
		of[i] = idx[c]
	}
	return of, errs
}

// unmatched is the status of the apps whose destination is no cluster.
const unmatched = "(no cluster)"
