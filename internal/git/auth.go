package git

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Auth says how to authenticate to a remote: for HTTP a token (from an environment
// variable, a file, or a USERNAME:TOKEN credentials file), for SSH a private key checked
// against known_hosts. The zero Auth is anonymous (and the ssh agent for SSH URLs).
// Secrets are read when a remote is contacted, so a rotated Secret file is picked up.
type Auth struct {
	// Username for HTTP with a token (default "git"); the token is the password.
	Username string
	// TokenEnv names an environment variable holding an HTTP token; TokenFile a file
	// (it wins over TokenEnv).
	TokenEnv  string
	TokenFile string
	// CredentialsFile holds one line USERNAME:TOKEN for HTTP (a mounted Secret).
	CredentialsFile string
	// SSHKeyFile is a private key for SSH URLs (passphrase: $GITGATE_SSH_KEY_PASSPHRASE);
	// KnownHostsFile the known_hosts to check the server against (default:
	// $SSH_KNOWN_HOSTS, ~/.ssh/known_hosts).
	SSHKeyFile     string
	KnownHostsFile string
	// Flags names the options above as the running command spells them, for messages;
	// an empty name is described generically.
	Flags AuthFlags
}

// AuthFlags are the command-line names of Auth's options (e.g. "--known-hosts").
type AuthFlags struct {
	TokenEnv, TokenFile, CredentialsFile, SSHKey, KnownHosts string
}

func flagOr(flag, generic string) string {
	if flag != "" {
		return flag
	}
	return generic
}

// SSHKeyPassphraseEnv holds the passphrase of Auth.SSHKeyFile.
const SSHKeyPassphraseEnv = "GITGATE_SSH_KEY_PASSPHRASE"

// Validate reads what Auth names that does not depend on the URL (the token variable,
// the token and credentials files), so a command can refuse a broken setting at start.
func (a Auth) Validate() error {
	_, _, err := a.httpCredentials()
	return err
}

// httpCredentials is the user and token for HTTP, empty token: none.
func (a Auth) httpCredentials() (user, token string, err error) {
	user = a.Username
	if a.TokenEnv != "" {
		token = os.Getenv(a.TokenEnv)
		if token == "" {
			return "", "", fmt.Errorf("environment variable %s is empty; export the token or drop %s", a.TokenEnv, flagOr(a.Flags.TokenEnv, "the token variable"))
		}
	}
	if a.TokenFile != "" {
		b, err := os.ReadFile(a.TokenFile)
		if err != nil {
			return "", "", fmt.Errorf("read token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if a.CredentialsFile != "" {
		name := flagOr(a.Flags.CredentialsFile, "credentials file")
		b, err := os.ReadFile(a.CredentialsFile)
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", name, err)
		}
		u, t, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		if !ok || t == "" || strings.Contains(t, "\n") {
			return "", "", fmt.Errorf("%s %s: want one line USERNAME:TOKEN", name, a.CredentialsFile)
		}
		user, token = u, t
	}
	if user == "" {
		user = "git"
	}
	return user, token, nil
}

// method builds go-git's authentication for ep, and lists the secrets it holds so
// errors can be redacted.
func (a Auth) method(ep Endpoint) (transport.AuthMethod, []string, error) {
	var secrets []string
	if u, err := url.Parse(ep.Raw); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
	}
	switch ep.Kind {
	case HTTP:
		user, token, err := a.httpCredentials()
		if err != nil || token == "" {
			return nil, secrets, err
		}
		return &githttp.BasicAuth{Username: user, Password: token}, append(secrets, token), nil
	case SSH:
		// Host keys are always checked against known_hosts, with the ssh agent too.
		hostKeys, err := a.hostKeys(ep)
		if err != nil {
			return nil, secrets, err
		}
		if a.SSHKeyFile == "" {
			agent, err := gitssh.NewSSHAgentAuth(ep.sshUser())
			if err != nil {
				return nil, secrets, fmt.Errorf("no ssh key: give %s, or run an ssh agent holding the key (SSH_AUTH_SOCK): %v", flagOr(a.Flags.SSHKey, "an ssh private key"), err)
			}
			agent.HostKeyCallbackHelper = hostKeys
			return agent, secrets, nil
		}
		keys, err := gitssh.NewPublicKeysFromFile(ep.sshUser(), a.SSHKeyFile, os.Getenv(SSHKeyPassphraseEnv))
		if err != nil {
			return nil, secrets, fmt.Errorf("ssh key %s: %w", a.SSHKeyFile, err)
		}
		keys.HostKeyCallbackHelper = hostKeys
		return keys, secrets, nil
	}
	return nil, secrets, nil
}

// hostKeys checks an ssh server's key against known_hosts: KnownHostsFile, else
// $SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts. An unknown
// host or a changed key is an error naming the host and what to do.
func (a Auth) hostKeys(ep Endpoint) (gitssh.HostKeyCallbackHelper, error) {
	var files []string
	if a.KnownHostsFile != "" {
		files = []string{a.KnownHostsFile}
	}
	flag := flagOr(a.Flags.KnownHosts, "a known_hosts file")
	db, err := gitssh.NewKnownHostsDb(files...)
	if err != nil {
		return gitssh.HostKeyCallbackHelper{}, fmt.Errorf("known hosts: %w; give %s (or set SSH_KNOWN_HOSTS)", err, flag)
	}
	where := a.KnownHostsFile
	if where == "" {
		where = os.Getenv("SSH_KNOWN_HOSTS")
	}
	if where == "" {
		where = "~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts"
	}
	host, port := ep.sshHostPort()
	check := db.HostKeyCallback()
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		if len(ke.Want) == 0 {
			scan := "ssh-keyscan " + host
			if port != "22" {
				scan = "ssh-keyscan -p " + port + " " + host
			}
			return fmt.Errorf("host %s is not in known_hosts (%s), so its key (%s) cannot be checked: if it is the server you mean, add its key with '%s >> known_hosts' (compare the key with the one its owner publishes) and give that file with %s", hostname, where, ssh.FingerprintSHA256(key), scan, flag)
		}
		return fmt.Errorf("host %s presented the key %s, which is not the one known_hosts (%s:%d) holds for it: the server's key changed or something is in between; ask the server's owner before you change known_hosts", hostname, ssh.FingerprintSHA256(key), ke.Want[0].Filename, ke.Want[0].Line)
	}
	return gitssh.HostKeyCallbackHelper{HostKeyCallback: cb, HostKeyAlgorithms: db.HostKeyAlgorithms(net.JoinHostPort(host, port))}, nil
}

// explain adds what to do to an ssh server's refusal of the key.
func (a Auth) explain(ep Endpoint, err error) error {
	if ep.Kind != SSH || err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		return err
	}
	key := "the ssh agent's keys (SSH_AUTH_SOCK)"
	if a.SSHKeyFile != "" {
		key = "the ssh key " + a.SSHKeyFile
	}
	todo := "use a key the server accepts for this repository (a deploy key)"
	if a.Flags.SSHKey != "" {
		todo = "give " + a.Flags.SSHKey + " a key the server accepts for this repository (a deploy key)"
	}
	return fmt.Errorf("%w: the server refused %s for user %s; %s", err, key, ep.sshUser(), todo)
}
