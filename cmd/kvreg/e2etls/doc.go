// Package e2etls drives kvreg with the docker CLI over TLS with htpasswd
// users and access rules: docker login with a self-signed CA installed for
// the daemon, push and pull, a wrong password refused, and a user without
// push rights refused with nothing written. Its tests start their own
// containerd and dockerd (root needed); without docker they skip, unless
// CI=true, where they fail.
package e2etls
