package vulndb

// osvDict1 is the preset DEFLATE dictionary of codec "flate-dict1": JSON
// fragments that recur in OSV records, so that each advisory, compressed on
// its own, still compresses well (about 3.6x instead of 1.9x on the shared
// data; see docs/decisions/0003-vulndb-store.md). The most common fragments
// come last, where DEFLATE reaches them with the shortest distances.
//
// Never change it: databases written with it must stay readable. A better
// dictionary needs a new codec name.
const osvDict1 = `"type":"EVIDENCE","url":"https://www.openwall.com/lists/oss-security/` +
	`"type":"ARTICLE","url":"https://security.gentoo.org/glsa/` +
	`"type":"REPORT","url":"https://bugzilla.redhat.com/show_bug.cgi?id=` +
	`"type":"WEB","url":"https://access.redhat.com/security/cve/CVE-` +
	`"type":"WEB","url":"https://lists.fedoraproject.org/archives/list/package-announce@lists.fedoraproject.org/message/` +
	`"type":"WEB","url":"https://lists.debian.org/debian-lts-announce/` +
	`"type":"WEB","url":"https://security.netapp.com/advisory/ntap-` +
	`"type":"WEB","url":"https://ubuntu.com/security/notices/USN-` +
	`"type":"ADVISORY","url":"https://www.debian.org/security/dsa-` +
	`"type":"ADVISORY","url":"https://security-tracker.debian.org/tracker/CVE-` +
	`"type":"ADVISORY","url":"https://github.com/advisories/GHSA-` +
	`"type":"PACKAGE","url":"https://pypi.org/project/` +
	`"type":"REPORT","url":"https://go.dev/issue/` +
	`"type":"FIX","url":"https://go.dev/cl/` +
	`"type":"WEB","url":"https://groups.google.com/g/golang-announce/c/` +
	`"type":"WEB","url":"https://pkg.go.dev/vuln/GO-` +
	`{"ecosystem":"npm","name":"@"},{"ecosystem":"Maven","name":"org.apache."},{"ecosystem":"crates.io","name":""}` +
	`{"ecosystem":"RubyGems","name":""},{"ecosystem":"NuGet","name":"Microsoft."},{"ecosystem":"Packagist","name":""}` +
	`{"ecosystem":"Ubuntu:22.04:LTS","name":""},{"ecosystem":"Alpine:v3.","name":""}` +
	`"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],` +
	`"severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],` +
	`"database_specific":{"source":"https://github.com/pypa/advisory-database/blob/main/vulns/` +
	`"database_specific":{"url":"https://pkg.go.dev/vuln/GO-","review_status":"REVIEWED"}` +
	`"ecosystem_specific":{"imports":[{"path":"github.com/","symbols":["` +
	`"database_specific":{"derived_from":"changelog.Debian.gz of ","distribution":"bookworm-security"}` +
	`"database_specific":{"distroversion":"v3.","reponame":"main","source":"alpine-secdb"}` +
	`{"type":"GIT","repo":"https://github.com/","events":[{"introduced":"0"},{"fixed":"` +
	`"withdrawn":"20` +
	`"references":[{"type":"ADVISORY","url":"https://nvd.nist.gov/vuln/detail/CVE-20` +
	`{"type":"FIX","url":"https://github.com/` +
	`{"type":"WEB","url":"https://github.com/` +
	`"versions":["0.1","0.1.0","0.2","1.0","1.0.0","1.0.1","1.1","1.1.0","1.2.0","2.0","2.0.0"],` +
	`"affected":[{"package":{"ecosystem":"PyPI","name":"","purl":"pkg:pypi/"}` +
	`"affected":[{"package":{"ecosystem":"Go","name":"github.com/"}` +
	`"affected":[{"package":{"ecosystem":"Debian:12","name":"","purl":"pkg:deb/debian/?arch=source"}` +
	`"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"` +
	`"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"` +
	`{"id":"DEBIAN-CVE-20","modified":"20","published":"20","aliases":["CVE-20"],"summary":"CVE-20 fixed in ` +
	`{"id":"ALPINE-CVE-20","modified":"0001-01-01T00:00:00Z","aliases":["CVE-20"],"summary":"CVE-20 fixed in ` +
	`{"id":"GO-20","modified":"20","published":"20","aliases":["CVE-20","GHSA-"],"summary":"","details":"` +
	`{"id":"PYSEC-20","modified":"20","published":"20","aliases":["CVE-20","GHSA-"],"details":"` +
	`"modified":"2024-01-01T00:00:00Z","published":"2023-01-01T00:00:00Z","aliases":["CVE-20`
