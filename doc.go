// Package vigil is the root of the Vigil module: the binary is in cmd/vigil
// and every capability in internal/. This file exists so the repository-wide
// tests (package docs, formatting) have a package to live in.
package vigil
