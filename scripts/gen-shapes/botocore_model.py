"""The botocore side: loading the pinned models, the closure of the shapes a list of
operations reaches, and the trimmed model written next to the Rust types."""

import sys

BOTOCORE_VERSION = "1.44.18"


def die(msg):
    print(f"gen_shapes: {msg}", file=sys.stderr)
    sys.exit(2)


def load_model(service):
    try:
        import botocore
        import botocore.loaders
    except ImportError:
        die("botocore is not importable: run me with the virtualenv's python (README.md)")
    if botocore.__version__ != BOTOCORE_VERSION:
        die(f"botocore {botocore.__version__} found, {BOTOCORE_VERSION} pinned (README.md)")
    return botocore.loaders.Loader().load_service_model(service, "service-2")


def shape_refs(shape):
    """The names of the shapes a shape refers to, in model order."""
    t = shape["type"]
    if t == "structure":
        return [m["shape"] for m in shape["members"].values()]
    if t == "list":
        return [shape["member"]["shape"]]
    if t == "map":
        return [shape["key"]["shape"], shape["value"]["shape"]]
    return []


def operation_refs(op):
    refs = [op[k]["shape"] for k in ("input", "output") if k in op]
    return refs + [e["shape"] for e in op.get("errors", [])]


def closure(model, operations):
    seen = set()
    stack = [r for name in operations for r in operation_refs(model["operations"][name])]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        if name not in model["shapes"]:
            die(f"shape {name} is referenced but not in the model")
        seen.add(name)
        stack.extend(shape_refs(model["shapes"][name]))
    return seen


def without_docs(value):
    if isinstance(value, dict):
        return {k: without_docs(v) for k, v in value.items() if k != "documentation"}
    if isinstance(value, list):
        return [without_docs(v) for v in value]
    return value


def trimmed_model(model, operations, names):
    """The model with only the listed operations and their shapes, in the model's order."""
    trimmed = {}
    if "version" in model:
        trimmed["version"] = model["version"]
    trimmed["metadata"] = model["metadata"]
    trimmed["operations"] = {k: v for k, v in model["operations"].items() if k in operations}
    trimmed["shapes"] = {k: v for k, v in model["shapes"].items() if k in names}
    return without_docs(trimmed)


def is_struct(shape):
    return shape["type"] == "structure"


def is_enum(shape):
    return shape["type"] == "string" and "enum" in shape


def strongly_connected(graph):
    """Tarjan's algorithm, iteratively: {node: component number}."""
    index, low, on_stack, stack, component = {}, {}, set(), [], {}
    counter = [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter[0]
                counter[0] += 1
                stack.append(node)
                on_stack.add(node)
            edges = graph[node]
            if i < len(edges):
                work.append((node, i + 1))
                nxt = edges[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            for nxt in edges:
                if nxt in on_stack:
                    low[node] = min(low[node], low[nxt])
            if low[node] == index[node]:
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component[w] = node
                    if w == node:
                        break
    return component


def check_botocore_reads(service, model, operations):
    """Makes sure botocore's own ServiceModel reads the trimmed model and resolves, from each
    operation, every shape it reaches: other botocore-format readers can rely on it."""
    import botocore.model

    service_model = botocore.model.ServiceModel(model, service_name=service)
    seen = set()

    def walk(shape):
        if shape is None or shape.name in seen:
            return
        seen.add(shape.name)
        if shape.type_name == "structure":
            for member in shape.members.values():
                walk(member)
        elif shape.type_name == "list":
            walk(shape.member)
        elif shape.type_name == "map":
            walk(shape.key)
            walk(shape.value)

    for name in operations:
        op = service_model.operation_model(name)
        for shape in [op.input_shape, op.output_shape, *op.error_shapes]:
            walk(shape)
    if seen != set(model["shapes"]):
        die(f"{service}: botocore reaches {len(seen)} shapes of the {len(model['shapes'])} kept")
