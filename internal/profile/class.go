package profile

import (
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/vigil-cwpp/vigil/internal/event"
)

// ClassOf returns the workload class a profile is kept for:
//
//   - a pod: "k8s:<namespace>/<owner>", the owner being the pod name
//     without the suffix its controller added (Deployment: "-<pod template
//     hash>-<5>", StatefulSet: "-<ordinal>", DaemonSet: "-<5>", Job:
//     "-<5>", CronJob: "-<schedule time>-<5>"), found from the pod's labels
//     (pod-template-hash, controller-revision-hash, job-name) or, without
//     them, from the suffix's shape; a pod name with no such suffix gives
//     its app.kubernetes.io/name or app label, else the pod name itself;
//   - any other container: its image repository without tag or digest,
//     normalised as Docker does ("nginx:1.25" → "docker.io/library/nginx");
//   - "" for the host, for a container whose image is not known yet, and
//     for a name over 512 bytes or with control characters: they are not
//     profiled.
func ClassOf(w *event.Workload) string {
	c := classOf(w)
	if c != "" && checkClass(c) != nil {
		return "" // not a name a profile can be stored under
	}
	return c
}

func classOf(w *event.Workload) string {
	if w == nil || w.ContainerID == "" {
		return ""
	}
	if w.PodName != "" {
		ns := w.PodNamespace
		if ns == "" {
			ns = "default"
		}
		return "k8s:" + ns + "/" + podOwner(w.PodName, w.PodLabels)
	}
	return imageRepo(w.Image)
}

// Kubernetes' random suffixes use this alphabet (no vowels, no 0, 1, 3).
const k8sAlnum = `[bcdfghjklmnpqrstvwxz2456789]`

var (
	reDeployPod = regexp.MustCompile(`^(.+)-` + k8sAlnum + `{6,10}-` + k8sAlnum + `{5}$`)
	reRandPod   = regexp.MustCompile(`^(.+)-` + k8sAlnum + `{5}$`)
	reOrdinal   = regexp.MustCompile(`^(.+)-[0-9]+$`)
	reCronJob   = regexp.MustCompile(`^(.+)-[0-9]{8,}$`)
)

func podOwner(pod string, labels map[string]string) string {
	if h := labels["pod-template-hash"]; h != "" {
		if i := strings.LastIndex(pod, "-"+h+"-"); i > 0 {
			return pod[:i]
		}
	}
	job := labels["batch.kubernetes.io/job-name"]
	if job == "" {
		job = labels["job-name"]
	}
	if job != "" {
		if m := reCronJob.FindStringSubmatch(job); m != nil {
			return m[1]
		}
		return job
	}
	if labels["controller-revision-hash"] != "" {
		if labels["statefulset.kubernetes.io/pod-name"] != "" || labels["apps.kubernetes.io/pod-index"] != "" {
			if m := reOrdinal.FindStringSubmatch(pod); m != nil {
				return m[1]
			}
		}
		if m := reRandPod.FindStringSubmatch(pod); m != nil {
			return m[1]
		}
	}
	for _, re := range []*regexp.Regexp{reDeployPod, reRandPod, reOrdinal} {
		if m := re.FindStringSubmatch(pod); m != nil {
			return m[1]
		}
	}
	if n := labels["app.kubernetes.io/name"]; n != "" {
		return n
	}
	if n := labels["app"]; n != "" {
		return n
	}
	return pod
}

// imageRepo is the repository of an image reference, as Docker names it.
func imageRepo(img string) string {
	if img == "" {
		return ""
	}
	if strings.HasPrefix(img, "sha256:") {
		return img // run by image ID: no repository to name it by
	}
	ref, err := name.ParseReference(img)
	if err != nil {
		// Not a valid reference (upper case, odd characters): cut the
		// digest and tag by hand.
		img, _, _ = strings.Cut(img, "@")
		if i := strings.LastIndexByte(img, ':'); i > strings.LastIndexByte(img, '/') {
			img = img[:i]
		}
		return img
	}
	repo := ref.Context()
	reg := repo.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + repo.RepositoryStr()
}
