// k8s_decode reads rendered Kubernetes manifests (helm template output) on stdin and decodes each
// document strictly into its Kubernetes API type: unknown or duplicate fields and unknown kinds
// are errors. It prints one "ok <apiVersion> <kind> <name>" line per object.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

type object interface{ GetName() string }

func newObject(apiVersion, kind string) (object, error) {
	switch apiVersion + " " + kind {
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	case "rbac.authorization.k8s.io/v1 Role":
		return &rbacv1.Role{}, nil
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return &rbacv1.RoleBinding{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	}
	return nil, fmt.Errorf("unknown kind %q of apiVersion %q", kind, apiVersion)
}

// decodeStrict decodes as the API server does: YAML to JSON (duplicate keys are errors), then
// case-sensitive JSON with unknown and duplicate fields as errors (encoding/json alone would take
// "hostPid" for "hostPID").
func decodeStrict(doc string, obj object) error {
	js, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return nil
}

var separator = regexp.MustCompile(`(?m)^---\s*$`)

func main() {
	in, err := io.ReadAll(bufio.NewReader(os.Stdin))
	if err != nil {
		fmt.Fprintf(os.Stderr, "Cannot read stdin: %v\n", err)
		os.Exit(1)
	}
	failed, count := 0, 0
	for i, doc := range separator.Split(string(in), -1) {
		source := fmt.Sprintf("document %d", i)
		for _, line := range strings.Split(doc, "\n") {
			if strings.HasPrefix(line, "# Source: ") {
				source = strings.TrimPrefix(line, "# Source: ")
			}
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			fmt.Fprintf(os.Stderr, "%s: Cannot parse YAML: %v\n", source, err)
			failed++
			continue
		}
		if meta.Kind == "" && meta.APIVersion == "" {
			continue // empty document or only comments
		}
		obj, err := newObject(meta.APIVersion, meta.Kind)
		if err == nil {
			err = decodeStrict(doc, obj)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %s: %v\n", source, meta.Kind, err)
			failed++
			continue
		}
		if obj.GetName() == "" {
			fmt.Fprintf(os.Stderr, "%s: %s: metadata.name is empty\n", source, meta.Kind)
			failed++
			continue
		}
		count++
		fmt.Printf("ok %s %s %s\n", meta.APIVersion, meta.Kind, obj.GetName())
	}
	if failed > 0 || count == 0 {
		fmt.Fprintf(os.Stderr, "%d objects decoded, %d failed\n", count, failed)
		os.Exit(1)
	}
}
