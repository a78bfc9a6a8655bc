"""Systematic Reed–Solomon erasure code over GF(2^8) with klauspost/reedsolomon v1.12.1's default matrix.

Field: GF(2^8) with reduction polynomial x^8+x^4+x^3+x^2+1 (0x11D), generator 2. Coding matrix
(spec §4.4): ``V·T`` where ``V[r][c] = r^c`` is the (k+m)×k Vandermonde matrix (``0^0 = 1``) and ``T`` the
inverse of its top k×k block, so the top k rows are the identity and the bottom m rows make the parity.
Any k of the k+m equally long shards give back the data. Byte-wise work is done with ``bytes.translate``
(one 256-byte multiplication table per coefficient) and big-integer XOR, so shards of hundreds of KiB
stay fast in pure Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from .errors import InvalidArgument

POLYNOMIAL = 0x11D
MAX_SHARDS = 256

Matrix = list[list[int]]


def _tables() -> tuple[list[int], list[int]]:
    exp = [0] * 512
    log = [0] * 256
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        value <<= 1
        if value & 0x100:
            value ^= POLYNOMIAL
    for power in range(255, 512):
        exp[power] = exp[power - 255]
    return exp, log


_EXP, _LOG = _tables()


def gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def gf_inverse(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return _EXP[255 - _LOG[a]]


def gf_pow(a: int, n: int) -> int:
    """``a^n`` as klauspost's ``galExp``: ``x^0 = 1`` (also for 0), ``0^n = 0`` for n > 0."""
    if n == 0:
        return 1
    if a == 0:
        return 0
    return _EXP[(_LOG[a] * n) % 255]


def invert(matrix: Matrix) -> Matrix:
    """Inverse of a square matrix over GF(2^8) (Gauss–Jordan); raises ValueError if singular."""
    size = len(matrix)
    work = [list(row) + [int(i == j) for j in range(size)] for i, row in enumerate(matrix)]
    for col in range(size):
        pivot = next((r for r in range(col, size) if work[r][col]), None)
        if pivot is None:
            raise ValueError("matrix is singular")
        work[col], work[pivot] = work[pivot], work[col]
        scale = gf_inverse(work[col][col])
        work[col] = [gf_mul(scale, v) for v in work[col]]
        for r in range(size):
            factor = work[r][col]
            if r != col and factor:
                work[r] = [v ^ gf_mul(factor, p) for v, p in zip(work[r], work[col], strict=True)]
    return [row[size:] for row in work]


def multiply(a: Matrix, b: Matrix) -> Matrix:
    result = []
    for row in a:
        out = []
        for c in range(len(b[0])):
            acc = 0
            for i, v in enumerate(row):
                acc ^= gf_mul(v, b[i][c])
            out.append(acc)
        result.append(out)
    return result


@cache
def coding_matrix(data_shards: int, parity_shards: int) -> tuple[tuple[int, ...], ...]:
    """klauspost's default (k+m)×k matrix: Vandermonde times the inverse of its top k×k block."""
    _check_counts(data_shards, parity_shards)
    total = data_shards + parity_shards
    vandermonde = [[gf_pow(r, c) for c in range(data_shards)] for r in range(total)]
    top_inverse = invert(vandermonde[:data_shards])
    return tuple(tuple(row) for row in multiply(vandermonde, top_inverse))


def _check_counts(data_shards: int, parity_shards: int) -> None:
    if data_shards <= 0 or parity_shards < 0 or data_shards + parity_shards > MAX_SHARDS:
        raise InvalidArgument("unsupported number of shards")


@cache
def _mul_table(coefficient: int) -> bytes:
    return bytes(gf_mul(coefficient, v) for v in range(256))


def _combine(coefficients: Sequence[int], shards: Sequence[bytes], size: int) -> bytes:
    """``Σ c_i · shard_i`` byte by byte (XOR sum of scaled shards)."""
    acc = 0
    for coefficient, shard in zip(coefficients, shards, strict=True):
        if coefficient:
            acc ^= int.from_bytes(shard.translate(_mul_table(coefficient)), "big")
    return acc.to_bytes(size, "big")


def encode(data: Sequence[bytes], parity_shards: int) -> list[bytes]:
    """The parity shards of ``data`` (all data shards must have the same, non-zero length)."""
    _check_counts(len(data), parity_shards)
    size = _shard_size(data)
    matrix = coding_matrix(len(data), parity_shards)
    return [_combine(matrix[len(data) + j], data, size) for j in range(parity_shards)]


def _shard_size(shards: Sequence[bytes]) -> int:
    sizes = {len(s) for s in shards}
    if len(sizes) != 1 or 0 in sizes:
        raise InvalidArgument("shards must all have the same non-zero size")
    return sizes.pop()


def reconstruct(shards: Sequence[bytes | None], data_shards: int) -> list[bytes]:
    """Fill in missing shards (``None`` or empty) from any ``data_shards`` present ones.

    Like klauspost's ``Reconstruct``, the first ``data_shards`` present shards (by index) decode the data
    and missing parity is re-encoded. Raises InvalidArgument for too few shards or unequal sizes.
    """
    parity_shards = len(shards) - data_shards
    _check_counts(data_shards, parity_shards)
    present = [i for i, s in enumerate(shards) if s]
    if len(present) < data_shards:
        raise InvalidArgument("too few shards given")
    size = _shard_size([s for s in shards if s])
    full = [bytes(s) if s else b"" for s in shards]
    matrix = coding_matrix(data_shards, parity_shards)
    if any(not full[i] for i in range(data_shards)):
        rows = present[:data_shards]
        decode = invert([list(matrix[r]) for r in rows])
        inputs = [full[r] for r in rows]
        for i in range(data_shards):
            if not full[i]:
                full[i] = _combine(decode[i], inputs, size)
    for j in range(parity_shards):
        if not full[data_shards + j]:
            full[data_shards + j] = _combine(matrix[data_shards + j], full[:data_shards], size)
    return full


def verify(shards: Sequence[bytes], data_shards: int) -> bool:
    """Whether the parity shards match the data shards."""
    parity = encode(shards[:data_shards], len(shards) - data_shards)
    return list(shards[data_shards:]) == parity
