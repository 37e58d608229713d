// Command kstatus prints how kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status), the status
// library Flux and kpt use, judges Kubernetes objects.
//
// Standard input holds JSON: one object, an array of objects, a `kind: List`-style object with
// `items`, or several of these one after another (for example one object per line). For each
// object, one JSON line is written to standard output, in input order:
//
//	{"kind": "Task", "namespace": "ns", "name": "a", "status": "InProgress", "message": "..."}
//
// An object kstatus cannot judge gets "error" instead of "status". The exit code is 0 when the
// input parsed, 2 otherwise.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status,omitempty"`
	Message   string `json:"message,omitempty"`
	Error     string `json:"error,omitempty"`
}

// plain turns the decoder's json.Number values into int64 (or float64 when not integral), the
// types the unstructured helpers expect (metadata.generation must be an int64).
func plain(value any) (any, error) {
	switch typed := value.(type) {
	case map[string]any:
		for key, item := range typed {
			converted, err := plain(item)
			if err != nil {
				return nil, err
			}
			typed[key] = converted
		}
		return typed, nil
	case []any:
		for index, item := range typed {
			converted, err := plain(item)
			if err != nil {
				return nil, err
			}
			typed[index] = converted
		}
		return typed, nil
	case json.Number:
		if whole, err := typed.Int64(); err == nil {
			return whole, nil
		}
		return typed.Float64()
	default:
		return value, nil
	}
}

// objects flattens one decoded JSON value into the objects it holds.
func objects(value any) ([]map[string]any, error) {
	switch typed := value.(type) {
	case []any:
		var found []map[string]any
		for _, item := range typed {
			inner, err := objects(item)
			if err != nil {
				return nil, err
			}
			found = append(found, inner...)
		}
		return found, nil
	case map[string]any:
		kind, _ := typed["kind"].(string)
		if items, isList := typed["items"].([]any); isList && strings.HasSuffix(kind, "List") {
			return objects(items)
		}
		return []map[string]any{typed}, nil
	default:
		return nil, fmt.Errorf("expected a JSON object or array, got %T", value)
	}
}

func judge(object map[string]any) verdict {
	item := &unstructured.Unstructured{Object: object}
	out := verdict{Kind: item.GetKind(), Namespace: item.GetNamespace(), Name: item.GetName()}
	result, err := status.Compute(item)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Status, out.Message = result.Status.String(), result.Message
	return out
}

func run(in io.Reader, out io.Writer) error {
	decoder := json.NewDecoder(bufio.NewReader(in))
	decoder.UseNumber()
	encoder := json.NewEncoder(out)
	for {
		var value any
		err := decoder.Decode(&value)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading objects: %w", err)
		}
		if value, err = plain(value); err != nil {
			return err
		}
		found, err := objects(value)
		if err != nil {
			return err
		}
		for _, object := range found {
			if err := encoder.Encode(judge(object)); err != nil {
				return err
			}
		}
	}
}

func main() {
	writer := bufio.NewWriter(os.Stdout)
	err := run(os.Stdin, writer)
	if flushErr := writer.Flush(); err == nil {
		err = flushErr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(2)
	}
}
