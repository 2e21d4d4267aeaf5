// Package frameworks maps Vigil's evidence — benchmark results, runtime
// alerts, vulnerability scans, file integrity runs — to the requirements of
// compliance frameworks (NIST SP 800-53 rev 5 and through it the FedRAMP
// Moderate baseline, PCI DSS 4.0, the HIPAA Security Rule, CIS Controls
// v8), scores each requirement with the evidence behind it, and writes the
// result as JSON or as one self-contained HTML page an auditor can open.
//
// The mapping is data (data/*.yaml, embedded), not code: it is reviewed as
// data and checked by the package tests. The package does no I/O beyond
// what its callers hand it (bytes to parse, writers to fill).
package frameworks
