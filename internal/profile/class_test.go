package profile

import (
	"strings"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/event"
)

func TestClassOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    *event.Workload
		want string
	}{
		{"host", &event.Workload{Host: "node1"}, ""},
		{"nil", nil, ""},
		{"container without metadata", &event.Workload{ContainerID: "abc"}, ""},
		{"official image", &event.Workload{ContainerID: "c", Image: "nginx"}, "docker.io/library/nginx"},
		{"tag", &event.Workload{ContainerID: "c", Image: "nginx:1.25-alpine"}, "docker.io/library/nginx"},
		{"digest", &event.Workload{ContainerID: "c", Image: "nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31"}, "docker.io/library/nginx"},
		{"tag and digest", &event.Workload{ContainerID: "c", Image: "docker.io/library/nginx:1.25@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31"}, "docker.io/library/nginx"},
		{"hub user", &event.Workload{ContainerID: "c", Image: "vigil-test/bookworm:minbase"}, "docker.io/vigil-test/bookworm"},
		{"index.docker.io", &event.Workload{ContainerID: "c", Image: "index.docker.io/library/redis:7"}, "docker.io/library/redis"},
		{"other registry with port", &event.Workload{ContainerID: "c", Image: "registry.local:5000/team/app:v2"}, "registry.local:5000/team/app"},
		{"ghcr", &event.Workload{ContainerID: "c", Image: "ghcr.io/org/tool:latest"}, "ghcr.io/org/tool"},
		{"upper case (invalid)", &event.Workload{ContainerID: "c", Image: "Registry.local:5000/Team/App:v2"}, "Registry.local:5000/Team/App"},
		{"image ID", &event.Workload{ContainerID: "c", Image: "sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31"}, "sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31"},
		{"deployment pod", pod("shop", "web-7d4b9c8f6d-x2x9z", nil), "k8s:shop/web"},
		{"deployment pod, dashed name", pod("shop", "cart-api-v2-5f8c7b9d4-q8w7n", nil), "k8s:shop/cart-api-v2"},
		{"deployment pod, label", pod("shop", "web-5b6c7d-abcde", map[string]string{"pod-template-hash": "5b6c7d"}), "k8s:shop/web"},
		{"statefulset pod", pod("db", "postgres-0", map[string]string{"controller-revision-hash": "postgres-6c9d8f7b5", "statefulset.kubernetes.io/pod-name": "postgres-0"}), "k8s:db/postgres"},
		{"statefulset pod, no labels", pod("db", "postgres-12", nil), "k8s:db/postgres"},
		{"daemonset pod", pod("kube-system", "fluent-bit-9xq2z", map[string]string{"controller-revision-hash": "7b9c5d"}), "k8s:kube-system/fluent-bit"},
		{"job pod", pod("batch", "migrate-db-h7k2p", map[string]string{"job-name": "migrate-db"}), "k8s:batch/migrate-db"},
		{"cronjob pod", pod("batch", "report-29012345-kx8vq", map[string]string{"batch.kubernetes.io/job-name": "report-29012345"}), "k8s:batch/report"},
		{"bare pod with app label", pod("dev", "debug", map[string]string{"app.kubernetes.io/name": "toolbox", "app": "other"}), "k8s:dev/toolbox"},
		{"bare pod with app", pod("dev", "debug", map[string]string{"app": "other"}), "k8s:dev/other"},
		{"bare pod", pod("dev", "nginx-proxy", nil), "k8s:dev/nginx-proxy"},
		{"no namespace", pod("", "web-7d4b9c8f6d-x2x9z", nil), "k8s:default/web"},
		{"control characters", &event.Workload{ContainerID: "c", Image: "evil\nimage"}, ""},
		{"too long", pod("ns", strings.Repeat("a", 600), nil), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClassOf(tc.w); got != tc.want {
				t.Errorf("ClassOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func pod(ns, name string, labels map[string]string) *event.Workload {
	return &event.Workload{ContainerID: "c", Image: "ignored:1", PodNamespace: ns, PodName: name, PodLabels: labels}
}
