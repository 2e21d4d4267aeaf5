// Package fim is file integrity monitoring: an AIDE-like configuration
// (watched paths, excludes, attribute groups), a parallel scanner that
// records the selected attributes of every watched file, a baseline
// database protected by a keyed MAC, and the comparison of a scan with the
// baseline (added, removed and changed entries with the before and after of
// every changed attribute). Realtime monitoring (realtime.go) turns file
// events into alerts for the same watched paths.
//
// fim never changes the files it watches; it writes only the baseline, its
// key and the audit log it is told to write.
package fim
