// Package e2e holds end-to-end tests of the built vigil binary: `vigil up`
// on this machine with a real Docker container doing something malicious,
// seen by the real agent, stored by the real server, acted on over the API
// and exported to a real syslog receiver and an OCSF file. It has no code
// of its own beyond test helpers.
package e2e
