"""Digests of a saved fit's parts, so a file edited after saving is refused rather than believed.

A fit file is a netCDF DataTree: attributes (the model specification, priors, centres, sampler settings, ...)
and groups (``posterior``, ``constant_data`` ...). :func:`tree_digest` hashes each part separately with
SHA-256 over a canonical form: JSON attributes re-serialised with sorted keys (so the digest does not depend on
how the text was spaced), arrays by name, dims, dtype, shape and bytes (text arrays as their strings, which
netCDF may return with another width). :func:`compare` names the parts whose content no longer matches.

The digest is a check against edits and damage, not a signature: whoever can write the file can also
recompute it. It makes an edit deliberate instead of silent.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

__all__ = ["DIGEST_ATTR", "tree_digest", "compare", "PART_NAMES"]

#: The tree attribute holding the digest (a JSON object: part name -> hex SHA-256).
DIGEST_ATTR = "bayescale_digest"
#: Attributes that make up the model's specification; every other attribute is hashed on its own.
SPEC_ATTRS = ("model_spec", "priors", "centres", "sampler")
#: What each part is, for messages.
PART_NAMES = {"spec": "the specification (attributes model_spec, priors, centres, sampler)",
              "posterior": "the posterior draws", "runs": "the training runs (constant_data, observed_data)",
              "log_likelihood": "the pointwise log-likelihood", "sample_stats": "the sampler statistics",
              "posterior_predictive": "the posterior predictive draws"}
_RUN_GROUPS = ("constant_data", "observed_data")


def _canonical_attr(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return ["array", str(value.dtype), value.tolist()]
    if isinstance(value, str):
        try:
            return ["json", json.loads(value)]
        except ValueError:
            return ["text", value]
    return [type(value).__name__, value]


def _update_array(h, name, var) -> None:
    values = np.asarray(var.values)
    head = {"name": str(name), "dims": list(map(str, var.dims)), "shape": list(values.shape)}
    if values.dtype.kind in "USO":  # text: netCDF may hand it back as another width or as objects
        head["dtype"] = "text"
        body = json.dumps([str(v) for v in values.ravel().tolist()]).encode()
    else:
        head["dtype"] = values.dtype.str
        body = np.ascontiguousarray(values).tobytes()
    h.update(json.dumps(head, sort_keys=True).encode())
    h.update(len(body).to_bytes(8, "little"))
    h.update(body)


def _group_digest(h, dataset) -> None:
    for name in sorted(dataset.variables, key=str):  # data variables and coordinates alike
        _update_array(h, name, dataset.variables[name])


def tree_digest(tree) -> dict[str, str]:
    """SHA-256 of each part of a fit's tree: ``spec``, ``runs``, each other group, each other attribute.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit's ``idata`` (its :data:`DIGEST_ATTR` attribute, if any, is not hashed).

    Returns
    -------
    dict
        Part name -> hexadecimal digest, with keys in sorted order.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"E": (("chain", "draw"), np.ones((1, 2)))})})
    >>> tree.attrs["model_spec"] = '{"law": "chinchilla"}'
    >>> sorted(tree_digest(tree))
    ['posterior', 'spec']
    >>> tree.attrs["model_spec"] = '{ "law":   "chinchilla" }'  # spacing is not content
    >>> tree_digest(tree)["spec"] == tree_digest(tree)["spec"]
    True
    """
    parts = {}

    def part(name):
        return parts.setdefault(name, hashlib.sha256())

    for key in sorted(tree.attrs, key=str):
        if key == DIGEST_ATTR:
            continue
        name = "spec" if key in SPEC_ATTRS else f"attribute {key}"
        part(name).update(json.dumps([str(key), _canonical_attr(tree.attrs[key])], sort_keys=True,
                                     default=str).encode())
    for group in sorted(tree.children):
        h = part("runs" if group in _RUN_GROUPS else group)
        h.update(f"[{group}]".encode())
        _group_digest(h, tree[group].to_dataset())
    return {name: parts[name].hexdigest() for name in sorted(parts)}


def compare(stored: dict, actual: dict) -> list[str]:
    """Names of the parts whose digest differs, is missing, or was added, in sorted order.

    Examples
    --------
    >>> compare({"spec": "a", "posterior": "b"}, {"spec": "a", "posterior": "c", "runs": "d"})
    ['posterior', 'runs']
    """
    return sorted(k for k in set(stored) | set(actual) if stored.get(k) != actual.get(k))
