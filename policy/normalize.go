package policy

import "strings"

// dockerHub is the one name Docker Hub has after normalisation.
const dockerHub = "docker.io"

// NormalizeRegistry returns the canonical name of a registry host: it is
// lower-cased, and Docker Hub's aliases (docker.io, index.docker.io,
// registry-1.docker.io) all become "docker.io". Other names, ports
// included, are returned lower-cased and otherwise unchanged
// (registry.k8s.io:443 stays distinct from registry.k8s.io).
func NormalizeRegistry(registry string) string {
	r := strings.ToLower(registry) // returns registry itself when nothing changes
	switch r {
	case "index.docker.io", "registry-1.docker.io":
		return dockerHub
	}
	return r
}

// NormalizeImage returns the name [Config.Match] expects,
// "<registry>/<repository>", with the registry normalised by
// [NormalizeRegistry] and, on Docker Hub, a single-segment repository
// prefixed with "library/" (nginx → docker.io/library/nginx). The
// repository is otherwise used as given; Match rejects one that is not a
// valid repository name.
func NormalizeImage(registry, repository string) string {
	reg := NormalizeRegistry(registry)
	if reg == dockerHub && !strings.Contains(repository, "/") {
		repository = "library/" + repository
	}
	return reg + "/" + repository
}
