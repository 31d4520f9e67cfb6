"""bistro for Python miners, through ctypes and libbistro (no compiled extension).

Copy this file into your miner. It needs only the standard library and the
shared library `libbistro.so` (`cargo build -p bistro-ffi --release`, then
`target/release/libbistro.so`); point `BISTRO_LIB` at it or pass its path to
`load()`. The API follows include/bistro.h; docs/ffi.md explains it.

Tensors go in and out as any C-contiguous float32 buffer: a NumPy array, an
`array.array('f')`, or (read-only inputs) a list of floats. A PyTorch miner
passes `param.detach().cpu().contiguous().numpy()` -- no copy for a CPU
float32 tensor -- and never needs PyTorch inside this module:

    import bistro_ctypes as bistro

    seed = bytes.fromhex(hotkey_file["secretSeed"][2:])      # 32 bytes
    with bistro.DeltaWriter(base_revision=master_digest, block=block, uid=uid,
                            hotkey=bistro.public_key_from_seed(seed)) as w:
        for name, p in model.named_parameters():
            delta = (p.detach() - start[name]).cpu().contiguous().numpy()
            w.add_tensor(name, delta, bistro.top_k(delta.size // 100, "f16"),
                         residual=residuals[name])      # float32 numpy, in/out
        data, digest = w.finish(seed=seed)             # bytes, signed

    reader = bistro.DeltaReader.from_bytes(data)
    reader.apply(name, weights_numpy, alpha=1.0)        # weights += delta, in place
"""

import array
import ctypes
import ctypes.util
import os
from collections import namedtuple

ABI_VERSION = 1  # BISTRO_ABI_VERSION of the header this module was written for

_STATUS_OK = 0

# bistro_encoding_kind and bistro_dtype
ENCODING_DENSE, ENCODING_TOP_K, ENCODING_INT8_BLOCK = 1, 2, 3
DTYPES = {"f32": 1, "f16": 2, "bf16": 3, "i8": 4}
_DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
_KIND_NAMES = {ENCODING_DENSE: "dense", ENCODING_TOP_K: "top_k", ENCODING_INT8_BLOCK: "int8_block"}


class BistroError(Exception):
    """A call into libbistro failed: `status` is the code, `name` its name."""

    def __init__(self, status, name, message):
        super().__init__(f"{name}: {message}")
        self.status = status
        self.name = name
        self.message = message


# --- the C structs ---------------------------------------------------------

class _Header(ctypes.Structure):
    _fields_ = [("base_revision", ctypes.c_uint8 * 32), ("block", ctypes.c_uint64),
                ("uid", ctypes.c_uint16), ("hotkey", ctypes.c_uint8 * 32)]


class _Limits(ctypes.Structure):
    _fields_ = [("max_tensors", ctypes.c_uint64), ("max_total_elements", ctypes.c_uint64),
                ("max_file_size", ctypes.c_uint64), ("max_name_len", ctypes.c_uint16),
                ("max_rank", ctypes.c_uint8)]


class _Encoding(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_uint32), ("dtype", ctypes.c_uint32), ("k", ctypes.c_uint64),
                ("block_size", ctypes.c_uint32)]


class _TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("name_len", ctypes.c_size_t),
                ("shape", ctypes.POINTER(ctypes.c_uint64)), ("rank", ctypes.c_size_t),
                ("element_count", ctypes.c_uint64), ("encoding", _Encoding),
                ("payload_offset", ctypes.c_uint64), ("payload_length", ctypes.c_uint64)]


class _DatasetParams(ctypes.Structure):
    _fields_ = [("dataset_id", ctypes.c_uint8 * 32), ("num_pages", ctypes.c_uint64),
                ("window_pages", ctypes.c_uint64), ("epoch_blocks", ctypes.c_uint64),
                ("reveal_delay_blocks", ctypes.c_uint64)]


class _ScoreRule(ctypes.Structure):
    _fields_ = [("min_local_gain", ctypes.c_double), ("min_specificity", ctypes.c_double),
                ("confidence_z", ctypes.c_double), ("max_global_harm", ctypes.c_double),
                ("min_merge_gain", ctypes.c_double)]


class _Verdict(ctypes.Structure):
    _fields_ = [("score", ctypes.c_double), ("reason", ctypes.c_uint32),
                ("local_gain", ctypes.c_double), ("global_gain", ctypes.c_double),
                ("specific_gain", ctypes.c_double), ("specific_se", ctypes.c_double),
                ("mergeable", ctypes.c_bool)]


# bistro_verdict_reason, by value
VERDICT_REASONS = ("scored", "non_finite_loss", "no_local_gain", "not_specific", "hurts_global",
                   "not_mergeable")
# BISTRO_DEFAULT_KAPPA: the chain's default kappa (32767 / 65535)
DEFAULT_KAPPA = 32767.0 / 65535.0

Verdict = namedtuple("Verdict", "score reason local_gain global_gain specific_gain specific_se "
                                "mergeable")
Consensus = namedtuple("Consensus", "consensus vtrust clipped")


# --- loading ---------------------------------------------------------------

_lib = None

_P = ctypes.c_void_p
_SIZE = ctypes.c_size_t
_U8P = ctypes.POINTER(ctypes.c_uint8)
_U16P = ctypes.POINTER(ctypes.c_uint16)
_U64P = ctypes.POINTER(ctypes.c_uint64)
_F32P = ctypes.POINTER(ctypes.c_float)
_F64P = ctypes.POINTER(ctypes.c_double)
_STATUS = ctypes.c_uint32

_PROTOTYPES = {
    "bistro_abi_version": (ctypes.c_uint32, []),
    "bistro_version": (ctypes.c_char_p, []),
    "bistro_status_name": (ctypes.c_char_p, [ctypes.c_uint32]),
    "bistro_last_error": (_SIZE, [ctypes.c_char_p, _SIZE]),
    "bistro_last_error_length": (_SIZE, []),
    "bistro_limits_for_model": (_STATUS, [ctypes.c_uint64, ctypes.POINTER(_Limits)]),
    "bistro_buffer_data": (_U8P, [_P]),
    "bistro_buffer_len": (_SIZE, [_P]),
    "bistro_buffer_free": (None, [_P]),
    "bistro_public_key_from_seed": (_STATUS, [ctypes.c_char_p, _U8P]),
    "bistro_delta_writer_new": (_STATUS, [ctypes.POINTER(_Header), ctypes.POINTER(_Limits),
                                          ctypes.POINTER(_P)]),
    "bistro_delta_writer_new_file": (_STATUS, [ctypes.c_char_p, ctypes.POINTER(_Header),
                                               ctypes.POINTER(_Limits), ctypes.POINTER(_P)]),
    "bistro_delta_writer_add_tensor": (_STATUS, [_P, ctypes.c_char_p, _U64P, _SIZE, _F32P, _SIZE,
                                                 ctypes.POINTER(_Encoding), _F32P]),
    "bistro_delta_writer_finish": (_STATUS, [_P, ctypes.c_char_p, _U8P, ctypes.POINTER(_P)]),
    "bistro_delta_writer_finish_file": (_STATUS, [_P, ctypes.c_char_p, _U8P]),
    "bistro_delta_writer_free": (None, [_P]),
    "bistro_delta_reader_open": (_STATUS, [ctypes.c_char_p, _SIZE, ctypes.POINTER(_Limits),
                                           ctypes.POINTER(_P)]),
    "bistro_delta_reader_open_file": (_STATUS, [ctypes.c_char_p, ctypes.POINTER(_Limits),
                                                ctypes.POINTER(_P)]),
    "bistro_delta_reader_free": (None, [_P]),
    "bistro_delta_reader_header": (_STATUS, [_P, ctypes.POINTER(_Header)]),
    "bistro_delta_reader_digest": (_STATUS, [_P, _U8P]),
    "bistro_delta_reader_verify_signature": (_STATUS, [_P]),
    "bistro_delta_reader_check_finite": (_STATUS, [_P]),
    "bistro_delta_reader_tensor_count": (_STATUS, [_P, ctypes.POINTER(_SIZE)]),
    "bistro_delta_reader_find": (_STATUS, [_P, ctypes.c_char_p, ctypes.POINTER(_SIZE)]),
    "bistro_delta_reader_tensor_info": (_STATUS, [_P, _SIZE, ctypes.POINTER(_TensorInfo)]),
    "bistro_delta_reader_apply": (_STATUS, [_P, _SIZE, _F32P, _SIZE, ctypes.c_float]),
    "bistro_delta_reader_decode": (_STATUS, [_P, _SIZE, _F32P, _SIZE]),
    "bistro_pages_epoch_of": (_STATUS, [ctypes.POINTER(_DatasetParams), ctypes.c_uint64, _U64P]),
    "bistro_pages_window": (_STATUS, [ctypes.POINTER(_DatasetParams), ctypes.c_uint16,
                                      ctypes.c_uint64, ctypes.c_uint64, _U64P, _SIZE]),
    "bistro_pages_local": (_STATUS, [ctypes.POINTER(_DatasetParams), ctypes.c_uint16,
                                     ctypes.c_uint64, ctypes.c_char_p, _U64P, _SIZE]),
    "bistro_pages_global": (_STATUS, [ctypes.POINTER(_DatasetParams), ctypes.c_uint64,
                                      ctypes.c_char_p, _U64P, _SIZE]),
    "bistro_weights_to_u16_f64": (_STATUS, [_U16P, ctypes.POINTER(ctypes.c_double), _SIZE, _U16P,
                                            _U16P, ctypes.POINTER(_SIZE)]),
    "bistro_score_rule_default": (_STATUS, [ctypes.POINTER(_ScoreRule)]),
    "bistro_score_judge": (_STATUS, [ctypes.POINTER(_ScoreRule), _F64P, _F64P, _SIZE, _F64P,
                                     _F64P, _SIZE, ctypes.POINTER(_Verdict)]),
    "bistro_next_average": (_STATUS, [ctypes.c_double, ctypes.c_double, ctypes.c_double, _F64P]),
    "bistro_weights_from_averages": (_STATUS, [_F64P, _SIZE, _F64P]),
    "bistro_yuma_clip": (_STATUS, [_F64P, _SIZE, _F64P, _SIZE, ctypes.c_double, _F64P, _F64P,
                                   _F64P]),
}


def load(path=None):
    """Loads libbistro from `path`, $BISTRO_LIB, or the system's library path."""
    global _lib
    path = path or os.environ.get("BISTRO_LIB") or ctypes.util.find_library("bistro")
    if not path:
        raise OSError("libbistro not found: set BISTRO_LIB to the path of libbistro.so")
    lib = ctypes.CDLL(path)
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    if lib.bistro_abi_version() != ABI_VERSION:
        raise OSError(f"{path} has ABI version {lib.bistro_abi_version()}, "
                      f"this module needs {ABI_VERSION}")
    _lib = lib
    return lib


def _l():
    return _lib if _lib is not None else load()


def _check(status):
    if status != _STATUS_OK:
        lib = _l()
        buf = ctypes.create_string_buffer(lib.bistro_last_error_length() + 1)
        lib.bistro_last_error(buf, len(buf))
        name = lib.bistro_status_name(status).decode()
        raise BistroError(status, name, buf.value.decode("utf-8", "replace"))


def version():
    """The library's version string."""
    return _l().bistro_version().decode()


# --- buffers ---------------------------------------------------------------

def _floats(obj, writable=False):
    """(ctypes float array, element count, shape) over a C-contiguous float32
    buffer, sharing its memory when it is writable; lists are copied
    (read-only use only)."""
    if isinstance(obj, (list, tuple)):
        if writable:
            raise TypeError("a list cannot be updated in place: pass a numpy float32 array "
                            "or array.array('f')")
        obj = array.array("f", obj)
    view = memoryview(obj)
    if view.format not in ("f", "<f", "=f") or view.itemsize != 4:
        raise TypeError(f"expected float32 data, got buffer format {view.format!r} "
                        "(use numpy .astype(numpy.float32) or array.array('f'))")
    if not view.c_contiguous:
        raise ValueError("data must be C-contiguous (numpy.ascontiguousarray, .contiguous())")
    n = view.nbytes // 4
    shape = tuple(view.shape) if view.ndim > 0 else ()
    if view.readonly:
        if writable:
            raise ValueError("the buffer is read-only; it must be writable here")
        return (ctypes.c_float * n).from_buffer_copy(view), n, shape
    return (ctypes.c_float * n).from_buffer(view), n, shape


def _bytes32(value, what):
    raw = bytes(value)
    if len(raw) != 32:
        raise ValueError(f"{what} must be 32 bytes, got {len(raw)}")
    return raw


# --- encodings -------------------------------------------------------------

def dense(dtype="f32"):
    """Every value, as f32 (exact), f16 or bf16."""
    return _Encoding(ENCODING_DENSE, DTYPES[dtype], 0, 0)


def top_k(k, dtype="f16"):
    """The k largest-magnitude values (f32, f16, bf16 or i8) and their indices."""
    return _Encoding(ENCODING_TOP_K, DTYPES[dtype], int(k), 0)


def int8_block(block_size=64):
    """Every value as int8 with an f32 scale per block."""
    return _Encoding(ENCODING_INT8_BLOCK, DTYPES["i8"], 0, int(block_size))


TensorInfo = namedtuple("TensorInfo", "index name shape element_count encoding dtype k block_size")


# --- signing ---------------------------------------------------------------

def public_key_from_seed(seed):
    """The 32-byte sr25519 public key (hotkey) of a 32-byte seed (`secretSeed`)."""
    out = (ctypes.c_uint8 * 32)()
    _check(_l().bistro_public_key_from_seed(_bytes32(seed, "seed"), out))
    return bytes(out)


# --- writing ---------------------------------------------------------------

class DeltaWriter:
    """Encodes a delta one tensor at a time, in memory or (with `path`) into a
    temp file renamed to `path` by `finish`. Use from one thread at a time."""

    def __init__(self, base_revision=bytes(32), block=0, uid=0, hotkey=bytes(32), path=None,
                 max_total_elements=None):
        self._handle = _P()
        lib = _l()
        header = _Header(
            (ctypes.c_uint8 * 32)(*_bytes32(base_revision, "base_revision")), int(block),
            int(uid), (ctypes.c_uint8 * 32)(*_bytes32(hotkey, "hotkey")))
        limits = None
        if max_total_elements is not None:
            limits = _Limits()
            _check(lib.bistro_limits_for_model(int(max_total_elements), ctypes.byref(limits)))
        self._path = path
        limits_ref = ctypes.byref(limits) if limits is not None else None
        if path is None:
            _check(lib.bistro_delta_writer_new(ctypes.byref(header), limits_ref,
                                               ctypes.byref(self._handle)))
        else:
            _check(lib.bistro_delta_writer_new_file(os.fsencode(path), ctypes.byref(header),
                                                    limits_ref, ctypes.byref(self._handle)))

    def add_tensor(self, name, data, encoding=None, shape=None, residual=None):
        """Encodes `data` (float32 buffer or list) as tensor `name`. `shape`
        defaults to the buffer's own shape. `residual` (a writable float32
        buffer of the same size, initially zeros) enables error feedback: it
        is updated in place with what the encoding dropped."""
        values, n, own_shape = _floats(data)
        dims = own_shape if shape is None else tuple(int(d) for d in shape)
        dims_c = (ctypes.c_uint64 * max(len(dims), 1))(*dims)
        res = None
        if residual is not None:
            res, m, _ = _floats(residual, writable=True)
            if m != n:
                raise ValueError(f"residual has {m} elements, data has {n}")
        enc = encoding if encoding is not None else dense()
        _check(_l().bistro_delta_writer_add_tensor(
            self._handle, name.encode(), dims_c, len(dims), values, n, ctypes.byref(enc), res))

    def finish(self, seed=None):
        """Finishes the delta, signed with the 32-byte `seed` when given.
        In memory: returns (bytes, digest). To a file: returns the digest."""
        lib = _l()
        seed_c = _bytes32(seed, "seed") if seed is not None else None
        digest = (ctypes.c_uint8 * 32)()
        if self._path is not None:
            _check(lib.bistro_delta_writer_finish_file(self._handle, seed_c, digest))
            return bytes(digest)
        buf = _P()
        _check(lib.bistro_delta_writer_finish(self._handle, seed_c, digest, ctypes.byref(buf)))
        try:
            data = ctypes.string_at(lib.bistro_buffer_data(buf), lib.bistro_buffer_len(buf))
        finally:
            lib.bistro_buffer_free(buf)
        return data, bytes(digest)

    def close(self):
        """Frees the writer (an unfinished file writer removes its temp file)."""
        if self._handle:
            _l().bistro_delta_writer_free(self._handle)
            self._handle = _P()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


# --- reading ---------------------------------------------------------------

class DeltaReader:
    """A delta validated once when opened; immutable and thread-safe."""

    def __init__(self, handle):
        self._handle = handle
        count = ctypes.c_size_t()
        _check(_l().bistro_delta_reader_tensor_count(handle, ctypes.byref(count)))
        self._infos = [self._info(i) for i in range(count.value)]
        self._index = {t.name: t.index for t in self._infos}

    @classmethod
    def from_bytes(cls, data, max_total_elements=None):
        """Opens a delta from bytes (they are copied)."""
        handle = _P()
        _check(_l().bistro_delta_reader_open(bytes(data), len(data),
                                             _limits(max_total_elements), ctypes.byref(handle)))
        return cls(handle)

    @classmethod
    def open_file(cls, path, max_total_elements=None):
        """Memory-maps and validates the delta file at `path`."""
        handle = _P()
        _check(_l().bistro_delta_reader_open_file(os.fsencode(path), _limits(max_total_elements),
                                                  ctypes.byref(handle)))
        return cls(handle)

    def _info(self, index):
        info = _TensorInfo()
        _check(_l().bistro_delta_reader_tensor_info(self._handle, index, ctypes.byref(info)))
        name = ctypes.string_at(info.name, info.name_len).decode()
        shape = tuple(info.shape[i] for i in range(info.rank))
        e = info.encoding
        return TensorInfo(index, name, shape, info.element_count, _KIND_NAMES[e.kind],
                          _DTYPE_NAMES[e.dtype], e.k, e.block_size)

    def tensors(self):
        """TensorInfo of every tensor, in file order."""
        return list(self._infos)

    def header(self):
        """dict with base_revision, block, uid, hotkey."""
        h = _Header()
        _check(_l().bistro_delta_reader_header(self._handle, ctypes.byref(h)))
        return {"base_revision": bytes(h.base_revision), "block": h.block, "uid": h.uid,
                "hotkey": bytes(h.hotkey)}

    def digest(self):
        out = (ctypes.c_uint8 * 32)()
        _check(_l().bistro_delta_reader_digest(self._handle, out))
        return bytes(out)

    def verify_signature(self):
        """Raises BistroError (BISTRO_ERR_BAD_SIGNATURE) unless signed by the header's hotkey."""
        _check(_l().bistro_delta_reader_verify_signature(self._handle))

    def check_finite(self):
        _check(_l().bistro_delta_reader_check_finite(self._handle))

    def _resolve(self, tensor):
        if isinstance(tensor, int):
            return tensor
        if tensor not in self._index:
            raise KeyError(tensor)
        return self._index[tensor]

    def apply(self, tensor, dst, alpha=1.0):
        """dst += alpha * tensor, in place; `dst` is a writable float32 buffer
        (e.g. `param.data.numpy()` for a CPU float32 parameter)."""
        values, n, _ = _floats(dst, writable=True)
        _check(_l().bistro_delta_reader_apply(self._handle, self._resolve(tensor), values, n,
                                              float(alpha)))

    def decode(self, tensor):
        """The tensor's values as array('f') (numpy: numpy.frombuffer(result, numpy.float32))."""
        index = self._resolve(tensor)
        out = array.array("f", bytes(4 * self._infos[index].element_count))
        values, n, _ = _floats(out, writable=True)
        _check(_l().bistro_delta_reader_decode(self._handle, index, values, n))
        return out

    def close(self):
        if self._handle:
            _l().bistro_delta_reader_free(self._handle)
            self._handle = _P()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


def _limits(max_total_elements):
    if max_total_elements is None:
        return None
    limits = _Limits()
    _check(_l().bistro_limits_for_model(int(max_total_elements), ctypes.byref(limits)))
    return ctypes.byref(limits)


# --- page selection and weights --------------------------------------------

def dataset_params(dataset_id, num_pages, window_pages, epoch_blocks, reveal_delay_blocks):
    """The page-selection parameters (see docs/pages.md)."""
    return _DatasetParams((ctypes.c_uint8 * 32)(*_bytes32(dataset_id, "dataset_id")),
                          num_pages, window_pages, epoch_blocks, reveal_delay_blocks)


def epoch_of(params, block):
    out = ctypes.c_uint64()
    _check(_l().bistro_pages_epoch_of(ctypes.byref(params), block, ctypes.byref(out)))
    return out.value


def window_pages(params, uid, epoch, count, first=0):
    """Pages first .. first+count of uid's window in epoch."""
    out = (ctypes.c_uint64 * max(count, 1))()
    _check(_l().bistro_pages_window(ctypes.byref(params), uid, epoch, first, out, count))
    return list(out[:count])


def local_pages(params, uid, block, reveal_block_hash, count):
    """count pages of uid's window, chosen by the hash of block + reveal delay."""
    out = (ctypes.c_uint64 * max(count, 1))()
    _check(_l().bistro_pages_local(ctypes.byref(params), uid, block,
                                   _bytes32(reveal_block_hash, "reveal_block_hash"), out, count))
    return list(out[:count])


def global_pages(params, block, reveal_block_hash, count):
    """count pages of the whole dataset for block, the same for every uid."""
    out = (ctypes.c_uint64 * max(count, 1))()
    _check(_l().bistro_pages_global(ctypes.byref(params), block,
                                    _bytes32(reveal_block_hash, "reveal_block_hash"), out, count))
    return list(out[:count])


def weights_to_u16(uids, weights):
    """(uids, u16 values) for set_weights, exactly as Bittensor's Python SDK."""
    n = len(uids)
    if len(weights) != n:
        raise ValueError(f"{n} uids but {len(weights)} weights")
    uids_c = (ctypes.c_uint16 * max(n, 1))(*uids)
    weights_c = (ctypes.c_double * max(n, 1))(*[float(w) for w in weights])
    out_uids = (ctypes.c_uint16 * max(n, 1))()
    out_values = (ctypes.c_uint16 * max(n, 1))()
    count = ctypes.c_size_t()
    _check(_l().bistro_weights_to_u16_f64(uids_c, weights_c, n, out_uids, out_values,
                                          ctypes.byref(count)))
    return list(out_uids[:count.value]), list(out_values[:count.value])


# --- scoring ---------------------------------------------------------------

def _doubles(values):
    values = [float(v) for v in values]
    return (ctypes.c_double * max(len(values), 1))(*values), len(values)


def score_rule_default():
    """bistro's default scoring rule, as a dict of its five parameters."""
    rule = _ScoreRule()
    _check(_l().bistro_score_rule_default(ctypes.byref(rule)))
    return {name: getattr(rule, name) for name, _ in _ScoreRule._fields_}


def judge(local_master, local_with_delta, global_master, global_with_delta, rule=None):
    """Scores one delta from per-page losses exactly as bistro's validators
    (`rule`: a dict like `score_rule_default()`'s, None for the default)."""
    if len(local_master) != len(local_with_delta) or len(global_master) != len(global_with_delta):
        raise ValueError("master and with-delta losses must have one value per page")
    c_rule = None
    if rule is not None:
        c_rule = ctypes.byref(_ScoreRule(**{k: float(v) for k, v in rule.items()}))
    lm, n_local = _doubles(local_master)
    ld, _ = _doubles(local_with_delta)
    gm, n_global = _doubles(global_master)
    gd, _ = _doubles(global_with_delta)
    v = _Verdict()
    _check(_l().bistro_score_judge(c_rule, lm, ld, n_local, gm, gd, n_global, ctypes.byref(v)))
    return Verdict(v.score, VERDICT_REASONS[v.reason], v.local_gain, v.global_gain,
                   v.specific_gain, v.specific_se, bool(v.mergeable))


def next_average(average, score, alpha):
    """One step of a miner's moving average of scores."""
    out = ctypes.c_double()
    _check(_l().bistro_next_average(float(average), float(score), float(alpha),
                                    ctypes.byref(out)))
    return out.value


def weights_from_averages(averages):
    """The weights moving averages give (proportional, summing to 1)."""
    values, n = _doubles(averages)
    out = (ctypes.c_double * max(n, 1))()
    _check(_l().bistro_weights_from_averages(values, n, out))
    return list(out[:n])


def yuma_clip(stakes, rows, kappa=DEFAULT_KAPPA):
    """Yuma consensus clipping of validators' weight `rows` (one per stake)."""
    n_validators = len(stakes)
    if len(rows) != n_validators:
        raise ValueError(f"{n_validators} stakes but {len(rows)} weight rows")
    n_miners = len(rows[0]) if rows else 0
    if any(len(r) != n_miners for r in rows):
        raise ValueError("weight rows of different lengths")
    c_stakes, _ = _doubles(stakes)
    c_rows, _ = _doubles([w for r in rows for w in r])
    consensus = (ctypes.c_double * max(n_miners, 1))()
    vtrust = (ctypes.c_double * max(n_validators, 1))()
    clipped = (ctypes.c_double * max(n_validators * n_miners, 1))()
    _check(_l().bistro_yuma_clip(c_stakes, n_validators, c_rows, n_miners, float(kappa),
                                 consensus, vtrust, clipped))
    flat = list(clipped[:n_validators * n_miners])
    return Consensus(list(consensus[:n_miners]), list(vtrust[:n_validators]),
                     [flat[i * n_miners:(i + 1) * n_miners] for i in range(n_validators)])
