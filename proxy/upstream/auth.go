package upstream

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/pullgate/pullgate/policy"
)

// authenticator returns the credentials source for an upstream. Secrets
// are read when a token is needed, so rotated files take effect without a
// restart.
func authenticator(u *policy.Upstream, host string) authn.Authenticator {
	switch {
	case u.Auth == nil:
		return authn.Anonymous
	case u.Auth.DockerConfig != "":
		return dockerConfigAuth{path: u.Auth.DockerConfig, keys: dockerConfigKeys(u.Registry, host)}
	default:
		return passwordFileAuth{username: u.Auth.Username, path: u.Auth.PasswordFile}
	}
}

// passwordFileAuth is Basic credentials whose password lives in a file.
type passwordFileAuth struct {
	username, path string
}

func (a passwordFileAuth) Authorization() (*authn.AuthConfig, error) {
	b, err := os.ReadFile(a.path)
	if err != nil {
		return nil, fmt.Errorf("read password file: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return nil, fmt.Errorf("password file %s is empty", a.path)
	}
	return &authn.AuthConfig{Username: a.username, Password: pw}, nil
}

// dockerConfigAuth reads credentials for an upstream from a Docker
// config.json (credential helpers included), the way docker and crane do.
type dockerConfigAuth struct {
	path string
	keys []string
}

func (a dockerConfigAuth) Authorization() (*authn.AuthConfig, error) {
	b, err := os.ReadFile(a.path)
	if err != nil {
		return nil, fmt.Errorf("read docker config: %w", err)
	}
	cf, err := config.LoadFromReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse docker config %s: invalid JSON", a.path)
	}
	for _, key := range a.keys {
		ac, err := cf.GetAuthConfig(key)
		if err != nil {
			return nil, fmt.Errorf("docker config %s: credentials for %s: %w", a.path, key, err)
		}
		if ac.Username != "" || ac.Password != "" || ac.Auth != "" || ac.IdentityToken != "" || ac.RegistryToken != "" {
			return &authn.AuthConfig{
				Username:      ac.Username,
				Password:      ac.Password,
				Auth:          ac.Auth,
				IdentityToken: ac.IdentityToken,
				RegistryToken: ac.RegistryToken,
			}, nil
		}
	}
	return &authn.AuthConfig{}, nil // anonymous: the file has nothing for this registry
}

// dockerConfigKeys lists the config.json keys that may hold credentials
// for an upstream, most specific first.
func dockerConfigKeys(registry, host string) []string {
	keys := []string{registry, host}
	if registry == "docker.io" || host == "registry-1.docker.io" || host == name.DefaultRegistry {
		keys = append(keys, authn.DefaultAuthKey)
	}
	return keys
}
