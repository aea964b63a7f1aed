"""Checkpoints: HF safetensors folder <-> this port's parameters <-> orbax Flax checkpoints.

Python API:
  load_hf_checkpoint(folder, mesh=None, rules=None, **runtime) -> (config, model)
  load_flax_checkpoint(folder, mesh=None, rules=None, **runtime) -> (config, model)
  load_params(config, source, mesh=None) -> model      (source: SafetensorsSource / DictSource)
  save_flax_checkpoint(model, dst, source_folder=None)   (orbax params + config + tokenizer files)
  export_hf(model, dst, dtype=None, max_shard_bytes=...) (sharded safetensors + index + config)
CLI:
  python -m models.qwen3_vl.convert hf-to-flax SRC DST [--param-dtype bfloat16]
  python -m models.qwen3_vl.convert flax-to-hf SRC DST [--dtype bfloat16]

Loading builds the model abstractly (`nnx.eval_shape`), then fills one leaf at a time straight
onto its target sharding: a stacked leaf [layers, ...] is allocated on device and written layer
by layer (donated update), so host memory holds at most one HF tensor besides the model itself.
Missing, unexpected and mis-shaped tensors are all reported by name before anything is read.
A Flax checkpoint folder is self-contained: `params/` (orbax), `config.json` (HF format) and the
tokenizer / processor files copied from the HF folder. Export writes what
`Qwen3VLForConditionalGeneration.from_pretrained` loads (tied heads omit `lm_head.weight`).
Export gathers every tensor to this host; it is meant for single-process runs.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding
from safetensors import safe_open
from safetensors.numpy import save_file
from tqdm import tqdm

from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.model import Qwen3VL
from models.qwen3_vl.param_names import Path, TensorMap, tensor_maps
from models.sharding import Rules, state_shardings

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
PARAMS_DIR = "params"
# Not copied into converted folders: weights of the other format.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5")
_DEFAULT_SHARD_BYTES = 5 * 1024 ** 3


class CheckpointError(ValueError):
    """A checkpoint does not match the config; the message lists the offending tensors."""


class TensorSource(Protocol):
    def shapes(self) -> dict[str, tuple[int, ...]]: ...
    def read(self, name: str) -> np.ndarray: ...


class DictSource:
    """Tensors held in memory under HF names (e.g. a torch state_dict converted to numpy)."""

    def __init__(self, tensors: Mapping[str, Any]):
        self._tensors = tensors

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(t.shape) for name, t in self._tensors.items()}

    def read(self, name: str) -> np.ndarray:
        return np.asarray(self._tensors[name])


class SafetensorsSource:
    """Tensors of an HF folder (`model.safetensors` or shards + index), read lazily one by one.

    Each read opens and closes its file: safetensors memory-maps whole files, and pages of a map
    that stays open count against the process until it is closed, which would make a streamed
    load hold the checkpoint twice (as file pages and as parameters).
    """

    def __init__(self, folder: str):
        index = os.path.join(folder, INDEX_FILE)
        if os.path.exists(index):
            with open(index) as f:
                weight_map = json.load(f).get("weight_map")
            if not isinstance(weight_map, dict):
                raise CheckpointError(f"{index} has no 'weight_map'. Fix: re-save the checkpoint.")
        elif os.path.exists(os.path.join(folder, SINGLE_FILE)):
            weight_map = None
        else:
            raise FileNotFoundError(f"{folder} holds neither {INDEX_FILE} nor {SINGLE_FILE}. "
                                    f"Fix: point at a Hugging Face checkpoint folder.")
        self._path_of: dict[str, str] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        for file in sorted(set(weight_map.values())) if weight_map else [SINGLE_FILE]:
            path = os.path.join(folder, file)
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path} is listed in {INDEX_FILE} but missing.")
            with safe_open(path, framework="numpy") as handle:
                for name in handle.keys():
                    self._path_of[name] = path
                    self._shapes[name] = tuple(handle.get_slice(name).get_shape())
        if weight_map:
            absent = sorted(n for n, f in weight_map.items()
                            if self._path_of.get(n) != os.path.join(folder, f))
            if absent:
                raise CheckpointError(f"{INDEX_FILE} lists tensors not found in their files: "
                                      f"{_names(absent)}")

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self._shapes)

    def read(self, name: str) -> np.ndarray:
        with safe_open(self._path_of[name], framework="numpy") as handle:
            return handle.get_tensor(name)


def _names(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" ... ({len(names)} in all)" if len(names) > limit else "")


def check_source(config: Qwen3VLConfig, source: TensorSource) -> list[TensorMap]:
    """The tensor table for `config`, after checking `source` holds exactly those tensors."""
    maps = tensor_maps(config)
    shapes = source.shapes()
    expected = {m.hf_name for m in maps}
    missing = sorted(expected - shapes.keys())
    extra = sorted(shapes.keys() - expected)
    if not config.tie_word_embeddings and missing == ["lm_head.weight"]:
        raise CheckpointError("missing tensors: lm_head.weight. The config says "
                              "tie_word_embeddings=false; fix the config if the head is tied.")
    if config.tie_word_embeddings and "lm_head.weight" in extra:
        extra.remove("lm_head.weight")  # transformers may write a tied copy; it is ignored
    wrong = [f"{m.hf_name} {shapes[m.hf_name]} (expected {m.hf_shape})" for m in maps
             if m.hf_name in shapes and shapes[m.hf_name] != m.hf_shape]
    problems = []
    if missing:
        problems.append(f"missing tensors: {_names(missing)}")
    if extra:
        problems.append(f"unexpected tensors: {_names(extra)}")
    if wrong:
        problems.append(f"tensors with wrong shapes: {_names(wrong)}")
    if problems:
        raise CheckpointError("checkpoint does not match the config: " + "; ".join(problems)
                              + ". Fix: use the config.json that belongs to these weights.")
    return maps


def abstract_model(config: Qwen3VLConfig) -> Qwen3VL:
    """The model with ShapeDtypeStruct leaves: no memory, no compute."""
    return nnx.eval_shape(lambda: Qwen3VL(config, rngs=nnx.Rngs(0)))


def _leaf_shardings(state: nnx.State, mesh: Mesh | None, rules: Rules) -> dict[Path, Any]:
    if mesh is None:
        device = SingleDeviceSharding(jax.devices()[0])
        return {path: device for path, _ in nnx.to_flat_state(state)}
    return {path: v.get_value() for path, v in
            nnx.to_flat_state(state_shardings(state, mesh, rules))}


def _layer_sharding(sharding: Any) -> Any:
    if isinstance(sharding, NamedSharding):
        return NamedSharding(sharding.mesh, PartitionSpec(*sharding.spec[1:]))
    return sharding


def _put(data: np.ndarray, sharding: Any) -> jax.Array:
    return jax.make_array_from_callback(data.shape, sharding, lambda index: data[index])


def _read(entry: TensorMap, source: TensorSource, dtype: jnp.dtype) -> np.ndarray:
    """One HF tensor in Flax layout and `dtype`, copied only where layout or dtype change."""
    return entry.to_flax(source.read(entry.hf_name)).astype(dtype, copy=False)


def _fill_leaf(shape: tuple[int, ...], dtype: jnp.dtype, sharding: Any,
               entries: list[TensorMap], source: TensorSource) -> jax.Array:
    if entries[0].layer is None:
        return _put(_read(entries[0], source, dtype), sharding)
    leaf = jax.jit(lambda: jnp.zeros(shape, dtype), out_shardings=sharding)()
    write = jax.jit(lambda full, part, i: jax.lax.dynamic_update_index_in_dim(full, part, i, 0),
                    donate_argnums=0, out_shardings=sharding)
    layer_sharding = _layer_sharding(sharding)
    for entry in entries:
        part = _put(_read(entry, source, dtype), layer_sharding)
        leaf = write(leaf, part, entry.layer)
    return leaf


def load_params(config: Qwen3VLConfig, source: TensorSource, mesh: Mesh | None = None,
                progress: bool = False) -> Qwen3VL:
    """Build `config`'s model with its parameters read from `source` (HF names and layouts).

    `progress` shows a bar over the tensors read (on stderr)."""
    maps = check_source(config, source)
    graphdef, state = nnx.split(abstract_model(config))
    shardings = _leaf_shardings(state, mesh, config.sharding_rules)
    by_path: dict[Path, list[TensorMap]] = collections.defaultdict(list)
    for m in maps:
        by_path[m.path].append(m)
    flat = nnx.to_flat_state(state)
    unfilled = sorted(str(p) for p, _ in flat if p not in by_path)
    if unfilled:
        raise CheckpointError(f"no HF tensor maps to parameters {unfilled}; the tensor table "
                              f"and the model disagree (a bug in param_names.py).")
    leaves = []
    bar = tqdm(total=len(maps), unit="tensor", desc="load", disable=not progress)
    for path, variable in flat:
        entries = by_path[path]
        if variable.shape != _leaf_shape(entries):
            raise CheckpointError(f"parameter {path} has shape {variable.shape} but its HF "
                                  f"tensors give {_leaf_shape(entries)} (param_names.py bug).")
        value = _fill_leaf(variable.shape, variable.dtype, shardings[path], entries, source)
        leaves.append((path, variable.replace(value)))
        bar.update(len(entries))
    bar.close()
    return nnx.merge(graphdef, nnx.from_flat_state(leaves))


def _leaf_shape(entries: list[TensorMap]) -> tuple[int, ...]:
    if entries[0].layer is None:
        return entries[0].flax_shape
    return (len(entries), *entries[0].flax_shape)


def hf_tensors(model: Qwen3VL, dtype: jnp.dtype | None = None
               ) -> Iterator[tuple[str, np.ndarray]]:
    """(HF name, numpy tensor in HF layout) for every tensor, one at a time, on this host."""
    flat = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
    for m in tensor_maps(model.config):
        leaf = flat[m.path].get_value()
        part = leaf if m.layer is None else leaf[m.layer]
        data = np.asarray(jax.device_get(part))
        yield m.hf_name, m.to_hf(data if dtype is None else data.astype(dtype))


def hf_shapes(config: Qwen3VLConfig) -> dict[str, tuple[int, ...]]:
    """HF tensor name -> shape for `config` (what `state_dict()` would hold)."""
    return {m.hf_name: m.hf_shape for m in tensor_maps(config)}


# ------------------------------------------------------------------------------------- folders
def _copy_side_files(src: str, dst: str) -> None:
    """Copy config, tokenizer and processor files (everything that is not weights)."""
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if (os.path.isfile(path) and not name.endswith(_WEIGHT_SUFFIXES)
                and name != INDEX_FILE):
            shutil.copy2(path, os.path.join(dst, name))


def _write_config(config: Qwen3VLConfig, dst: str, dtype: str) -> None:
    """config.json unless one was copied (the copy keeps fields this port does not model)."""
    path = os.path.join(dst, "config.json")
    if os.path.exists(path):
        with open(path) as f:
            content = json.load(f)
    else:
        content = config.to_hf_dict()
    content["dtype"] = dtype
    content.pop("torch_dtype", None)
    with open(path, "w") as f:
        json.dump(content, f, indent=2, sort_keys=True)


def load_hf_checkpoint(folder: str, mesh: Mesh | None = None, rules: Rules | None = None,
                       progress: bool = False, **runtime: Any
                       ) -> tuple[Qwen3VLConfig, Qwen3VL]:
    """Config and model from an HF folder (config.json + safetensors); streams tensor by tensor.

    `runtime` sets Qwen3VLConfig runtime options (param_dtype, dtype, scan_layers, remat).
    """
    if rules is not None:
        runtime["sharding_rules"] = rules
    config = Qwen3VLConfig.from_json_file(folder, **runtime)
    return config, load_params(config, SafetensorsSource(folder), mesh, progress)


def save_flax_checkpoint(model: Qwen3VL, dst: str, source_folder: str | None = None) -> None:
    """Write `dst/params` (orbax), config.json and the side files of `source_folder`.

    Every process of a multi-host run must call it (orbax saves collectively); only process 0
    writes the small files.
    """
    params = os.path.join(os.path.abspath(dst), PARAMS_DIR)
    if os.path.exists(params):
        raise FileExistsError(f"{params} already exists. Fix: choose an empty destination.")
    if jax.process_index() == 0:
        os.makedirs(dst, exist_ok=True)
        if source_folder is not None:
            _copy_side_files(source_folder, dst)
        _write_config(model.config, dst, model.config.param_dtype)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(params, nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    checkpointer.wait_until_finished()


def load_flax_checkpoint(folder: str, mesh: Mesh | None = None, rules: Rules | None = None,
                         **runtime: Any) -> tuple[Qwen3VLConfig, Qwen3VL]:
    """Config and model from a folder written by `save_flax_checkpoint` / `hf-to-flax`.

    Parameters are restored straight onto their shardings and cast to `param_dtype` (default:
    the dtype they were saved in).
    """
    params = os.path.join(os.path.abspath(folder), PARAMS_DIR)
    if not os.path.isdir(params):
        raise FileNotFoundError(f"{folder} has no '{PARAMS_DIR}/' orbax folder. Fix: convert "
                                f"an HF folder first: python -m models.qwen3_vl.convert "
                                f"hf-to-flax SRC {folder}")
    if rules is not None:
        runtime["sharding_rules"] = rules
    if "param_dtype" not in runtime:
        with open(os.path.join(folder, "config.json")) as f:
            runtime["param_dtype"] = json.load(f).get("dtype", "float32")
    config = Qwen3VLConfig.from_json_file(folder, **runtime)
    graphdef, state = nnx.split(abstract_model(config))
    shardings = _leaf_shardings(state, mesh, config.sharding_rules)
    target = nnx.from_flat_state([
        (path, v.replace(jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=shardings[path])))
        for path, v in nnx.to_flat_state(state)])
    try:
        restored = ocp.StandardCheckpointer().restore(params, nnx.to_pure_dict(target))
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"{params} does not match {folder}/config.json: {err}") from err
    nnx.replace_by_pure_dict(state, restored)
    return config, nnx.merge(graphdef, state)


def export_hf(model: Qwen3VL, dst: str, dtype: str | None = None,
              max_shard_bytes: int = _DEFAULT_SHARD_BYTES, source_folder: str | None = None,
              progress: bool = False) -> None:
    """Write `model` as an HF folder: sharded safetensors + index + config.json (+ side files)."""
    if jax.process_count() > 1:
        raise RuntimeError("export_hf gathers tensors on one host; run it in a single process "
                           "(load the checkpoint there with load_flax_checkpoint).")
    dtype = dtype or model.config.param_dtype
    np_dtype = model.config.replace(param_dtype=dtype).jnp_param_dtype
    os.makedirs(dst, exist_ok=True)
    if source_folder is not None:
        _copy_side_files(source_folder, dst)
    _write_config(model.config, dst, dtype)
    # Shard boundaries need sizes only, which come from the table, so tensors stream through.
    itemsize = np.dtype(np_dtype).itemsize
    plan: list[list[str]] = [[]]
    size = 0
    for m in tensor_maps(model.config):
        nbytes = int(np.prod(m.hf_shape)) * itemsize
        if plan[-1] and size + nbytes > max_shard_bytes:
            plan.append([])
            size = 0
        plan[-1].append(m.hf_name)
        size += nbytes
    files = [SINGLE_FILE] if len(plan) == 1 else [
        f"model-{k + 1:05d}-of-{len(plan):05d}.safetensors" for k in range(len(plan))]
    shard_of = {name: k for k, names in enumerate(plan) for name in names}
    current, tensors, total = 0, {}, 0
    for name, tensor in tqdm(hf_tensors(model, np_dtype), total=len(shard_of), unit="tensor",
                             desc="export", disable=not progress):
        if shard_of[name] != current:
            save_file(tensors, os.path.join(dst, files[current]), metadata={"format": "pt"})
            current, tensors = shard_of[name], {}
        tensors[name] = tensor
        total += tensor.nbytes
    save_file(tensors, os.path.join(dst, files[current]), metadata={"format": "pt"})
    if len(files) > 1:
        index = {"metadata": {"total_size": total},
                 "weight_map": {name: files[k] for name, k in shard_of.items()}}
        with open(os.path.join(dst, INDEX_FILE), "w") as f:
            json.dump(index, f, indent=2, sort_keys=True)


# ------------------------------------------------------------------------------------------ CLI
def _checkpoint_dtype(folder: str) -> str:
    with open(os.path.join(folder, "config.json")) as f:
        content = json.load(f)
    dtype = content.get("dtype") or content.get("torch_dtype") or "float32"
    return dtype if dtype in ("float32", "bfloat16", "float16") else "float32"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.qwen3_vl.convert",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    to_flax = sub.add_parser("hf-to-flax", help="HF safetensors folder -> Flax orbax folder")
    to_flax.add_argument("src")
    to_flax.add_argument("dst")
    to_flax.add_argument("--param-dtype", default=None,
                         help="dtype of the saved parameters (default: the checkpoint's dtype)")
    to_hf = sub.add_parser("flax-to-hf", help="Flax orbax folder -> HF safetensors folder")
    to_hf.add_argument("src")
    to_hf.add_argument("dst")
    to_hf.add_argument("--dtype", default=None, help="tensor dtype (default: the saved dtype)")
    to_hf.add_argument("--max-shard-gb", type=float, default=5.0)
    args = parser.parse_args(argv)
    if os.path.exists(args.dst) and os.listdir(args.dst):
        parser.error(f"destination {args.dst} is not empty; choose a new folder.")
    if args.command == "hf-to-flax":
        dtype = args.param_dtype or _checkpoint_dtype(args.src)
        _, model = load_hf_checkpoint(args.src, param_dtype=dtype, progress=True)
        save_flax_checkpoint(model, args.dst, source_folder=args.src)
    else:
        _, model = load_flax_checkpoint(args.src)
        export_hf(model, args.dst, dtype=args.dtype, progress=True,
                  max_shard_bytes=int(args.max_shard_gb * 1024 ** 3), source_folder=args.src)
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
