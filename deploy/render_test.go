// Package deploy holds streamjoin's Kubernetes manifests (a kustomize base
// and overlays) and the offline tests that render them and check them
// against the binary's own settings.
package deploy

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kinds are the objects deploy/ may hold, each with its apiVersion and the
// k8s.io/api type it must decode into.
var kinds = map[string]struct {
	apiVersion string
	new        func() any
}{
	"ServiceAccount":        {"v1", func() any { return &corev1.ServiceAccount{} }},
	"ConfigMap":             {"v1", func() any { return &corev1.ConfigMap{} }},
	"Secret":                {"v1", func() any { return &corev1.Secret{} }},
	"Service":               {"v1", func() any { return &corev1.Service{} }},
	"PersistentVolumeClaim": {"v1", func() any { return &corev1.PersistentVolumeClaim{} }},
	"StatefulSet":           {"apps/v1", func() any { return &appsv1.StatefulSet{} }},
	"Deployment":            {"apps/v1", func() any { return &appsv1.Deployment{} }},
	"Job":                   {"batch/v1", func() any { return &batchv1.Job{} }},
	"PodDisruptionBudget":   {"policy/v1", func() any { return &policyv1.PodDisruptionBudget{} }},
}

// rendered is one kustomization's output, decoded.
type rendered struct {
	configMaps map[string]*corev1.ConfigMap
	services   []*corev1.Service
	pdbs       []*policyv1.PodDisruptionBudget
	workloads  []workload
	all        []string // kind/name of every object
}

// workload is a pod template and what owns it.
type workload struct {
	kind, name  string
	template    *corev1.PodTemplateSpec
	serviceName string // a StatefulSet's governing Service
}

func (w workload) String() string { return w.kind + "/" + w.name }

// deployTree copies deploy/ into an in-memory file system at /deploy,
// applying edit (nil: none) to each file's content, so that a test can
// render a mutated copy.
func deployTree(t *testing.T, edit func(path, content string) string) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		content := string(b)
		if edit != nil {
			content = edit(path, content)
		}
		return mem.WriteFile(filepath.Join("/deploy", path), []byte(content))
	})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

// kustomizations lists the directories to render: the base and every
// overlay.
func kustomizations(t *testing.T) []string {
	t.Helper()
	dirs := []string{"base"}
	entries, err := os.ReadDir("overlays")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("overlays", e.Name()))
		}
	}
	if len(dirs) < 3 {
		t.Fatalf("kustomizations %v: want the base and at least two overlays", dirs)
	}
	return dirs
}

// render builds dir (relative to deploy/) of fsys with kustomize and
// decodes every object strictly: an unknown kind, a wrong apiVersion, an
// unknown or duplicated field is an error.
func render(fsys filesys.FileSystem, dir string) (*rendered, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(fsys, filepath.Join("/deploy", dir))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	r := &rendered{configMaps: map[string]*corev1.ConfigMap{}}
	for _, res := range m.Resources() {
		kind, name := res.GetKind(), res.GetName()
		ref := kind + "/" + name
		spec, ok := kinds[kind]
		if !ok {
			return nil, fmt.Errorf("%s: %s: kind not expected in deploy/", dir, ref)
		}
		if res.GetApiVersion() != spec.apiVersion {
			return nil, fmt.Errorf("%s: %s: apiVersion %s, want %s", dir, ref, res.GetApiVersion(), spec.apiVersion)
		}
		b, err := res.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", dir, ref, err)
		}
		obj := spec.new()
		if err := yaml.UnmarshalStrict(b, obj); err != nil {
			return nil, fmt.Errorf("%s: %s does not decode strictly: %w", dir, ref, err)
		}
		r.all = append(r.all, ref)
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			r.configMaps[o.Name] = o
		case *corev1.Service:
			r.services = append(r.services, o)
		case *policyv1.PodDisruptionBudget:
			r.pdbs = append(r.pdbs, o)
		case *appsv1.StatefulSet:
			r.workloads = append(r.workloads, workload{kind, name, &o.Spec.Template, o.Spec.ServiceName})
		case *appsv1.Deployment:
			r.workloads = append(r.workloads, workload{kind: kind, name: name, template: &o.Spec.Template})
		case *batchv1.Job:
			r.workloads = append(r.workloads, workload{kind: kind, name: name, template: &o.Spec.Template})
		}
	}
	sort.Strings(r.all)
	return r, nil
}

// renderAll renders every kustomization of the real deploy/ tree.
func renderAll(t *testing.T) map[string]*rendered {
	t.Helper()
	fsys := deployTree(t, nil)
	out := map[string]*rendered{}
	for _, dir := range kustomizations(t) {
		r, err := render(fsys, dir)
		if err != nil {
			t.Fatal(err)
		}
		out[dir] = r
	}
	return out
}
