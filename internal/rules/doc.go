// Package rules is Vigil's Falco-compatible rule engine: it loads Falco rules
// YAML (lists, macros, rules, exceptions, append and override), compiles each
// condition once into a tree of typed closures indexed by event type, and
// evaluates runtime events (internal/event) against them without allocating
// when nothing matches. Rules that need a field, event or source Vigil cannot
// supply are skipped and reported by name, never silently dropped.
//
// It does no I/O: callers hand it file contents (Load) or use the embedded
// built-in rules (Default).
package rules
