package deploy

import (
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/streamjoin/streamjoin/internal/cli"
	"github.com/streamjoin/streamjoin/internal/image"
)

// The checks below each return every problem they find in one rendering,
// naming the object; nil means none. TestChecksCatchMutations shows that
// each one fails on a broken copy of deploy/.

const envPrefix = "STREAMJOIN_"

// commandSettings is cli.Settings() indexed by command, then by flag name
// and by variable name.
type commandSettings map[string]struct {
	flags map[string]cli.Setting
	envs  map[string]cli.Setting
}

func loadSettings() commandSettings {
	out := commandSettings{}
	for cmd, list := range cli.Settings() {
		s := out[cmd]
		s.flags, s.envs = map[string]cli.Setting{}, map[string]cli.Setting{}
		for _, st := range list {
			s.flags[st.Flag] = st
			if st.Env != "" {
				s.envs[st.Env] = st
			}
		}
		out[cmd] = s
	}
	return out
}

// commandOf is the streamjoin command a container runs: the words of its
// args before the first flag ("run", "dlq list"). The image's entrypoint is
// the binary, so a container that sets command replaces it.
func commandOf(c corev1.Container) (string, error) {
	if len(c.Command) > 0 && !slices.Equal(c.Command, image.Entrypoint()) {
		return "", fmt.Errorf("container %s: command %q replaces the image's entrypoint %q", c.Name, c.Command, image.Entrypoint())
	}
	var words []string
	for _, a := range c.Args {
		if strings.HasPrefix(a, "-") {
			break
		}
		words = append(words, a)
	}
	if len(words) == 0 {
		return "", fmt.Errorf("container %s: args %q name no streamjoin command", c.Name, c.Args)
	}
	return strings.Join(words, " "), nil
}

// envValue is one variable of a container as the process would see it.
type envValue struct {
	value  string                    // literal or from a ConfigMap
	secret *corev1.SecretKeySelector // from a Secret: value unknown here
	field  string                    // from the downward API: the field path
}

// containerEnv resolves a container's environment: envFrom ConfigMaps in
// order, then env, which wins.
func containerEnv(c corev1.Container, cms map[string]*corev1.ConfigMap) (map[string]envValue, []error) {
	var errs []error
	env := map[string]envValue{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := cms[from.ConfigMapRef.Name]
			if !ok {
				errs = append(errs, fmt.Errorf("envFrom ConfigMap %s: no such ConfigMap", from.ConfigMapRef.Name))
				continue
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = envValue{value: v}
			}
		default:
			errs = append(errs, fmt.Errorf("envFrom %+v: only ConfigMaps (a Secret's keys would be settings nobody can check)", from))
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = envValue{value: e.Value}
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = envValue{secret: e.ValueFrom.SecretKeyRef}
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = envValue{field: e.ValueFrom.FieldRef.FieldPath}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok := cms[ref.Name].Data[ref.Key]
			if cms[ref.Name] == nil || !ok {
				errs = append(errs, fmt.Errorf("env %s: no key %s in ConfigMap %s", e.Name, ref.Key, ref.Name))
			}
			env[e.Name] = envValue{value: v}
		default:
			errs = append(errs, fmt.Errorf("env %s: unsupported source", e.Name))
		}
	}
	return env, errs
}

// forContainers calls f for each container of each workload and gathers
// its errors, prefixed with the workload and container.
func forContainers(r *rendered, f func(w workload, c corev1.Container) []error) error {
	var errs []error
	for _, w := range r.workloads {
		for _, c := range w.template.Spec.Containers {
			for _, err := range f(w, c) {
				errs = append(errs, fmt.Errorf("%s container %s: %w", w, c.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// checkSettings: every command, flag and STREAMJOIN_* variable a container
// uses is a real setting of the command it runs.
func checkSettings(r *rendered, st commandSettings) error {
	return forContainers(r, func(w workload, c corev1.Container) []error {
		cmd, err := commandOf(c)
		if err != nil {
			return []error{err}
		}
		s, ok := st[cmd]
		if !ok {
			return []error{fmt.Errorf("streamjoin has no command %q", cmd)}
		}
		var errs []error
		for _, a := range c.Args {
			if name, isFlag := strings.CutPrefix(a, "--"); isFlag {
				name, _, _ = strings.Cut(name, "=")
				if _, ok := s.flags[name]; !ok {
					errs = append(errs, fmt.Errorf("streamjoin %s has no flag --%s", cmd, name))
				}
			}
		}
		env, envErrs := containerEnv(c, r.configMaps)
		errs = append(errs, envErrs...)
		for name := range env {
			if !strings.HasPrefix(name, envPrefix) {
				continue
			}
			if _, ok := s.envs[name]; !ok {
				errs = append(errs, fmt.Errorf("%s is not a setting of streamjoin %s (see its --help)", name, cmd))
			}
		}
		return errs
	})
}

// setting is the value a container's command would use for flag: from its
// args, else its environment, else the flag's default. ok is false when
// the value comes from a Secret or the downward API.
func setting(c corev1.Container, env map[string]envValue, st commandSettings, cmd, flag string) (value string, ok bool) {
	for i, a := range c.Args {
		if v, found := strings.CutPrefix(a, "--"+flag+"="); found {
			return v, true
		}
		if a == "--"+flag && i+1 < len(c.Args) {
			return c.Args[i+1], true
		}
	}
	if e, found := env[st[cmd].flags[flag].Env]; found {
		return e.value, e.secret == nil && e.field == ""
	}
	return st[cmd].flags[flag].Default, true
}

// checkProbes: a container whose command serves HTTP (has --http-addr)
// exposes that port as "http" and probes it, liveness and readiness on
// different paths (what the paths answer is TestProbesAgainstBinary's
// part); one that serves no HTTP has no HTTP probes. Services and the
// scrape annotation point at the same port.
func checkProbes(r *rendered, st commandSettings) error {
	err := forContainers(r, func(w workload, c corev1.Container) []error {
		cmd, err := commandOf(c)
		if err != nil || st[cmd].flags == nil {
			return nil // checkSettings reports it
		}
		probes := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
		if _, serves := st[cmd].flags["http-addr"]; !serves {
			var errs []error
			for kind, p := range probes {
				if p != nil && p.HTTPGet != nil {
					errs = append(errs, fmt.Errorf("%s probe over HTTP, but streamjoin %s serves no HTTP", kind, cmd))
				}
			}
			return errs
		}
		env, _ := containerEnv(c, r.configMaps)
		addr, _ := setting(c, env, st, cmd, "http-addr")
		_, portStr, err := net.SplitHostPort(addr)
		port, perr := strconv.Atoi(portStr)
		if err != nil || perr != nil || port == 0 {
			return []error{fmt.Errorf("http-addr %q has no fixed port to probe", addr)}
		}
		var errs []error
		if cp := containerPort(c, intstr.FromString("http")); cp != port {
			errs = append(errs, fmt.Errorf("port named http is %d, but streamjoin %s listens on %d (http-addr %q)", cp, cmd, port, addr))
		}
		for kind, p := range probes {
			switch {
			case p == nil || p.HTTPGet == nil:
				errs = append(errs, fmt.Errorf("no HTTP %s probe", kind))
			case containerPort(c, p.HTTPGet.Port) != port:
				errs = append(errs, fmt.Errorf("%s probe port %s is not the listening port %d", kind, p.HTTPGet.Port.String(), port))
			}
		}
		if c.LivenessProbe != nil && c.ReadinessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet != nil &&
			c.LivenessProbe.HTTPGet.Path == c.ReadinessProbe.HTTPGet.Path {
			errs = append(errs, fmt.Errorf("liveness and readiness both probe %s: a process waiting for PostgreSQL would be restarted", c.LivenessProbe.HTTPGet.Path))
		}
		if a, ok := w.template.Annotations["prometheus.io/port"]; ok && a != strconv.Itoa(port) {
			errs = append(errs, fmt.Errorf("prometheus.io/port %s is not the listening port %d", a, port))
		}
		return errs
	})
	var errs []error
	for _, svc := range r.services {
		pods := selected(r, svc.Spec.Selector)
		if len(pods) == 0 {
			errs = append(errs, fmt.Errorf("Service %s selects no workload's pods", svc.Name))
		}
		for _, w := range pods {
			for _, p := range svc.Spec.Ports {
				if containerPort(w.template.Spec.Containers[0], p.TargetPort) == 0 {
					errs = append(errs, fmt.Errorf("Service %s port %s: target %s is no port of %s", svc.Name, p.Name, p.TargetPort.String(), w))
				}
			}
		}
	}
	return errors.Join(err, errors.Join(errs...))
}

// containerPort resolves a named or numeric port of c; 0 if c has none.
func containerPort(c corev1.Container, p intstr.IntOrString) int {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return int(cp.ContainerPort)
		}
	}
	return 0
}

// selected lists the workloads whose pods sel selects.
func selected(r *rendered, sel map[string]string) []workload {
	var out []workload
	for _, w := range r.workloads {
		if len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(w.template.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

// checkSecurity: every pod runs as the image's non-root user, mounts no
// service account token, cannot escalate, has a read-only root and no
// capabilities, and asks for CPU and memory with a memory limit.
func checkSecurity(r *rendered) error {
	var errs []error
	for _, w := range r.workloads {
		ps := w.template.Spec.SecurityContext
		if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser != image.UID {
			errs = append(errs, fmt.Errorf("%s: pod securityContext must set runAsNonRoot and runAsUser %d (the image's user)", w, image.UID))
		}
		if t := w.template.Spec.AutomountServiceAccountToken; t == nil || *t {
			errs = append(errs, fmt.Errorf("%s: automountServiceAccountToken must be false (streamjoin calls no Kubernetes API)", w))
		}
	}
	err := forContainers(r, func(w workload, c corev1.Container) []error {
		var errs []error
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 ||
			(sc.Privileged != nil && *sc.Privileged) {
			errs = append(errs, errors.New("securityContext must set allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, drop ALL capabilities and add none"))
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			errs = append(errs, errors.New("resources must request cpu and memory and limit memory"))
		}
		return errs
	})
	return errors.Join(append(errs, err)...)
}

// checkFiles: every *_FILE setting names a file a mounted volume provides.
func checkFiles(r *rendered) error {
	return forContainers(r, func(w workload, c corev1.Container) []error {
		env, _ := containerEnv(c, r.configMaps)
		var errs []error
		for name, v := range env {
			if !strings.HasPrefix(name, envPrefix) || !strings.HasSuffix(name, "_FILE") || v.value == "" {
				continue
			}
			if !provided(w, c, v.value) {
				errs = append(errs, fmt.Errorf("%s=%s: no mounted volume provides that file", name, v.value))
			}
		}
		return errs
	})
}

// provided reports whether file is one of the files c's volume mounts
// provide: an item of a Secret or ConfigMap volume, or anything under a
// volume mounted whole.
func provided(w workload, c corev1.Container, file string) bool {
	for _, m := range c.VolumeMounts {
		rel, found := strings.CutPrefix(path.Clean(file), path.Clean(m.MountPath)+"/")
		if !found {
			continue
		}
		for _, v := range w.template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			var items []corev1.KeyToPath
			switch {
			case v.Secret != nil:
				items = v.Secret.Items
			case v.ConfigMap != nil:
				items = v.ConfigMap.Items
			}
			if len(items) == 0 {
				return true
			}
			for _, it := range items {
				if it.Path == rel {
					return true
				}
			}
		}
	}
	return false
}

// secretRefs lists every Secret key the workloads reference, as
// "name/key".
func secretRefs(r *rendered) []string {
	seen := map[string]bool{}
	for _, w := range r.workloads {
		for _, c := range w.template.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					seen[e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key] = true
				}
			}
		}
		for _, v := range w.template.Spec.Volumes {
			if v.Secret == nil {
				continue
			}
			if len(v.Secret.Items) == 0 {
				seen[v.Secret.SecretName+"/*"] = true
			}
			for _, it := range v.Secret.Items {
				seen[v.Secret.SecretName+"/"+it.Key] = true
			}
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkSecretsDocumented: every Secret key referenced has a line of the
// operations doc naming both the Secret and the key in backquotes. A
// secret volume must list its items: a whole-Secret mount cannot be
// documented key by key.
func checkSecretsDocumented(r *rendered, doc string) error {
	var errs []error
	lines := strings.Split(doc, "\n")
	for _, ref := range secretRefs(r) {
		name, key, _ := strings.Cut(ref, "/")
		if key == "*" {
			errs = append(errs, fmt.Errorf("Secret %s is mounted whole: list its keys as items", name))
			continue
		}
		if !slices.ContainsFunc(lines, func(l string) bool {
			return strings.Contains(l, "`"+name+"`") && strings.Contains(l, "`"+key+"`")
		}) {
			errs = append(errs, fmt.Errorf("Secret %s key %s: no line of docs/operations.md names `%s` and `%s`", name, key, name, key))
		}
	}
	return errors.Join(errs...)
}

// checkWorkloads: the parts the issue asks for are there; the ingest
// StatefulSet's pods are their own static group members; each
// PodDisruptionBudget covers a workload; a run pod's grace period covers
// its shutdown (the batch in flight, then HTTP's drain).
func checkWorkloads(r *rendered, st commandSettings) error {
	var errs []error
	for _, want := range []string{"StatefulSet/streamjoin-ingest", "Deployment/streamjoin-api", "Service/streamjoin-api", "Deployment/streamjoin-watch", "Job/streamjoin-migrate", "PodDisruptionBudget/streamjoin-ingest", "PodDisruptionBudget/streamjoin-api"} {
		if !slices.Contains(r.all, want) {
			errs = append(errs, fmt.Errorf("no %s", want))
		}
	}
	for _, w := range r.workloads {
		if w.kind != "StatefulSet" {
			continue
		}
		if !slices.ContainsFunc(r.services, func(s *corev1.Service) bool {
			return s.Name == w.serviceName && s.Spec.ClusterIP == corev1.ClusterIPNone
		}) {
			errs = append(errs, fmt.Errorf("%s: serviceName %q is no headless Service", w, w.serviceName))
		}
		for _, c := range w.template.Spec.Containers {
			env, _ := containerEnv(c, r.configMaps)
			if env[envPrefix+"INSTANCE_ID"].field != "metadata.name" {
				errs = append(errs, fmt.Errorf("%s: STREAMJOIN_INSTANCE_ID must come from metadata.name (the pod name), for static group membership", w))
			}
		}
	}
	for _, p := range r.pdbs {
		if p.Spec.Selector == nil || len(selected(r, p.Spec.Selector.MatchLabels)) != 1 {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s must select exactly one workload's pods", p.Name))
		}
	}
	errs = append(errs, forContainers(r, func(w workload, c corev1.Container) []error {
		cmd, err := commandOf(c)
		if err != nil || cmd != "run" {
			return nil
		}
		env, _ := containerEnv(c, r.configMaps)
		var need time.Duration
		for _, flag := range []string{"shutdown-timeout", "http-shutdown-timeout"} {
			v, _ := setting(c, env, st, cmd, flag)
			d, err := time.ParseDuration(v)
			if err != nil {
				return []error{fmt.Errorf("%s %q: %w", flag, v, err)}
			}
			need += d
		}
		grace := time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
		if g := w.template.Spec.TerminationGracePeriodSeconds; g != nil {
			grace = time.Duration(*g) * time.Second
		}
		if grace <= need {
			return []error{fmt.Errorf("terminationGracePeriodSeconds %v does not cover shutdown-timeout + http-shutdown-timeout = %v", grace, need)}
		}
		return nil
	}))
	return errors.Join(errs...)
}
