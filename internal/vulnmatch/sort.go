package vulnmatch

import (
	"cmp"
	"slices"
	"strings"
)

// SortByRisk orders findings most urgent first: those in CISA's KEV
// catalog (known exploited) first, then by EPSS score, then by CVSS base
// score, then by severity, all descending, then by advisory ID. Unknown
// EPSS and CVSS sort below any known value. The sort is stable: findings
// equal in all of these keep their order.
func SortByRisk(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if ak, bk := a.KEV != nil, b.KEV != nil; ak != bk {
			if ak {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(epssScore(b), epssScore(a)); c != 0 {
			return c
		}
		if c := cmp.Compare(cvssBase(b), cvssBase(a)); c != 0 {
			return c
		}
		if c := cmp.Compare(severityRank(b.Severity), severityRank(a.Severity)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func epssScore(f Finding) float64 {
	if f.EPSS == nil {
		return -1
	}
	return f.EPSS.Score
}

func cvssBase(f Finding) float64 {
	if f.CVSS == nil {
		return -1
	}
	return f.CVSS.BaseScore
}
