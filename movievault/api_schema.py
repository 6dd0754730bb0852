"""The JSON API's request and answer shapes, declared once: the views parse requests with
them and build answers from them, and movievault/openapi.py describes the API from them.

Each request field runs the check of movievault/validation.py that the domain runs too,
so a refusal reads the same wherever it is caught; the JSON Schema annotations beside it
(pattern, range, length) say the same rule to clients and to the fuzzer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from movievault import validation
from movievault.api_patterns import (
    both,
    file_name_pattern,
    not_null,
    one_of,
    pattern_of,
    visible_pattern,
)
from movievault.errors import InvalidInput
from movievault.library import MAX_CHECK
from movievault.media.names import FIRST_YEAR, MAX_TITLE_LENGTH, latest_year
from movievault.media.subtitle_files import MAX_SIZE as MAX_SUBTITLE_SIZE
from movievault.models import (
    DuplicateCheckPublic,
    FilePublic,
    PartUrlPublic,
    StoredPartPublic,
    SubtitlePublic,
    UploadPublic,
)
from movievault.uploads import MAX_PART_URLS

SHA256_PATTERN = "^[0-9a-fA-F]{64}$"
EXAMPLE_SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#: Sizes are whole bytes; JSON numbers past this lose precision in JavaScript clients.
LARGEST_SIZE = 2**63 - 1


def _content_type(value: Any) -> str:
    """A declared content type: a string (kept when allowed, else octet-stream) or null."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput("content_type must be a string, such as video/mp4.")
    return validation.content_type(value)


def _size(value: Any) -> int:
    """A size in bytes: an integer of at least 1 (the route checks its own upper limit)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > LARGEST_SIZE:
        raise InvalidInput(f"size must be at most {LARGEST_SIZE} bytes.")
    return validation.file_size(validation.whole(value), maximum=LARGEST_SIZE)


def _listed(message: str, *, least: int, most: int | None) -> BeforeValidator:
    """A check that a field is a list of `least` to `most` entries (or null), saying `message`."""

    def check(value: Any) -> Any:
        if value is not None and (
            not isinstance(value, list) or len(value) < least
            or (most is not None and len(value) > most)
        ):
            raise InvalidInput(message)
        return value

    return BeforeValidator(check)


def _at(value: Any) -> float:
    """Seconds from the movie's start, a finite number of at least 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidInput("at must be a number of seconds from the start of the movie.")
    if value < 0:
        raise InvalidInput("at must be 0 seconds or later.")
    return float(value)


def _etag(value: Any) -> str:
    """A part's ETag as the store returned it."""
    if value is None:
        return ""  # declared without its ETag: completion refuses it with the reason
    if not isinstance(value, str) or len(value) > 256:
        raise InvalidInput("Each part's etag must be the string the store returned.")
    return value


def _part_number(name: str) -> Callable[[Any], int]:
    """A check of a part number (its upper bound is the upload's part count)."""
    return lambda value: validation.positive_int(
        validation.whole(value), name=name, maximum=10_000)


Sha256 = Annotated[
    str,
    Field(pattern=SHA256_PATTERN, description="SHA-256 of the whole file, 64 hex digits.",
          examples=[EXAMPLE_SHA256]),
    BeforeValidator(validation.sha256_hex),
]
Fingerprint = Annotated[
    str | None,
    Field(pattern=SHA256_PATTERN, description="SHA-256 of the first and last MiB "
          "(the whole file when smaller), 64 hex digits."),
    BeforeValidator(lambda value: validation.optional_digest(value, "fingerprint")),
]
FileName = Annotated[
    str,
    Field(min_length=1, description="The file's name; path parts and control characters are "
          "dropped, and it is shortened to 255 characters.", examples=["Heat.1995.1080p.mkv"],
          json_schema_extra=pattern_of(file_name_pattern)),
    BeforeValidator(validation.file_name),
]
ContentType = Annotated[
    str | None,
    Field(description="A media type; one a movie library does not keep is stored as "
          "application/octet-stream.", examples=["video/x-matroska"]),
    BeforeValidator(_content_type),
]
Size = Annotated[int, Field(ge=1, le=LARGEST_SIZE, description="Bytes."), BeforeValidator(_size)]
PartNumber = Annotated[int, Field(ge=1, le=10_000), BeforeValidator(_part_number("part number"))]


class Shape(BaseModel):
    """A request body: a JSON object with only the fields its class declares."""

    model_config = ConfigDict(extra="forbid")
    #: What the refusal of a body that is no object says.
    object_message: ClassVar[str] = "The request body must be a JSON object."

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: Any) -> Any:
        """Refuse what is not an object, and unknown fields, with a sentence; a required
        field that is missing is checked as null, so its own check says what it needs."""
        if not isinstance(data, dict):
            raise InvalidInput(cls.object_message)
        declared = set(cls.model_fields)
        unknown = sorted(str(name) for name in data if name not in declared)
        if unknown:
            raise InvalidInput(
                f"{cls.object_message[:-1]}; unknown field {', '.join(unknown)[:200]} (it "
                f"takes {', '.join(sorted(declared))})."
            )
        missing = {name: None for name in declared
                   if name not in data and cls.model_fields[name].is_required()}
        return {**data, **missing}

    def fields(self) -> dict[str, Any]:
        """What the client sent, checked and cleaned, as the domain functions take it."""
        return self.model_dump(exclude_unset=True)


# --- requests --------------------------------------------------------------------------------


class CheckEntry(Shape):
    """One file to look for: by `sha256`, or by `fingerprint` and `size` (to learn whether it
    may be hashed while uploading)."""

    # By fingerprint when there is one (then with its size), else by sha256.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["fingerprint", "size"], "properties": {
            "fingerprint": {"type": "string"}, "size": {"type": "integer"}}},
        {"required": ["sha256"], "properties": {
            "sha256": {"type": "string"}, "fingerprint": {"type": "null"}}},
    ]})
    object_message: ClassVar[str] = "The each entry of files must be a JSON object."
    sha256: Sha256 | None = None
    fingerprint: Fingerprint = None
    size: Size | None = None


class CheckRequest(Shape):
    """`POST /api/files/check`."""

    object_message: ClassVar[str] = "The request body must be a JSON object with a files list."
    files: Annotated[
        list[CheckEntry], Field(max_length=MAX_CHECK),
        _listed("files must be a list of {sha256, size} objects.", least=0, most=None),
        _listed(f"files may list at most {MAX_CHECK} entries per request.", least=0,
                most=MAX_CHECK),
    ]


class UploadRequest(Shape):
    """`POST /api/uploads`: `sha256`, or a `fingerprint` alone to hash while uploading."""

    model_config = ConfigDict(json_schema_extra=one_of(("sha256",), ("fingerprint",)))

    size: Size
    fingerprint: Fingerprint = None
    sha256: Sha256 | None = None
    name: FileName
    content_type: ContentType = None


class PartWanted(Shape):
    """A part to sign a URL for, with its SHA-256 when the upload's parts carry one."""

    object_message: ClassVar[str] = "The each entry of parts must be a JSON object."
    number: PartNumber
    sha256: Annotated[str | None, Field(pattern=SHA256_PATTERN), BeforeValidator(
        lambda value: validation.optional_digest(value, "each part's sha256"))] = None


PARTS_MESSAGE = (
    f"parts must be a list of 1 to {MAX_PART_URLS} objects {{number, sha256}} (or part_numbers "
    "a list of part numbers, for uploads without checksums)."
)


class PartsRequest(Shape):
    """`POST /api/uploads/{id}/parts`: `parts`, or `part_numbers` without checksums."""

    model_config = ConfigDict(json_schema_extra=one_of(("parts",), ("part_numbers",)))
    parts: Annotated[list[PartWanted] | None, Field(min_length=1, max_length=MAX_PART_URLS),
                     _listed(PARTS_MESSAGE, least=1, most=MAX_PART_URLS)] = None
    part_numbers: Annotated[list[PartNumber] | None,
                            Field(min_length=1, max_length=MAX_PART_URLS),
                            _listed(PARTS_MESSAGE, least=1, most=MAX_PART_URLS)] = None


class PartDone(Shape):
    """A part as the store acknowledged it."""

    object_message: ClassVar[str] = "The each entry of parts must be a JSON object."
    part_number: Annotated[int, Field(ge=1, le=10_000),
                           BeforeValidator(_part_number("part_number"))]
    etag: Annotated[str, Field(max_length=256), BeforeValidator(_etag)]


class CompleteRequest(Shape):
    """`POST /api/uploads/{id}/complete`: the parts' ETags (multipart; without them the
    store's list is used), and the `sha256` of an upload started with a fingerprint."""

    sha256: Sha256 | None = None
    parts: Annotated[list[PartDone] | None, _listed(
        "parts must be a list of {part_number, etag} objects.", least=0, most=None)] = None


def _to_latest_year(schema: dict[str, Any]) -> None:
    """The year's upper bound moves with the calendar: read it when the document is made."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "integer":
            option["maximum"] = latest_year()


class FileChange(Shape):
    """`PATCH /api/files/{id}`: any of name, title and year."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    object_message: ClassVar[str] = (
        "The request body must be a JSON object with name, title or year."
    )
    name: Annotated[FileName | None, Field(json_schema_extra=both(
        pattern_of(file_name_pattern), not_null))] = None
    title: Annotated[str | None, Field(min_length=1, max_length=MAX_TITLE_LENGTH,
                                       examples=["Heat"], json_schema_extra=both(
                                           pattern_of(visible_pattern), not_null)),
                     BeforeValidator(validation.title)] = None
    year: Annotated[int | None, Field(ge=FIRST_YEAR, description="From 1870 to five years "
                                      "after this one; null for none.", examples=[1995],
                                      json_schema_extra=_to_latest_year),
                    BeforeValidator(lambda value: validation.year(validation.whole(value)))] = None


class PosterRequest(Shape):
    """`POST /api/files/{id}/poster`."""

    object_message: ClassVar[str] = "The request body must be a JSON object with at (seconds)."
    at: Annotated[float, Field(ge=0, description="Seconds from the start, within the movie.",
                               examples=[600]), BeforeValidator(_at)]


def _subtitle_name(schema: dict[str, Any]) -> None:
    """A file name with a subtitle file's extension."""
    schema["allOf"] = [{"pattern": file_name_pattern()},
                       {"pattern": r"\.([Ss][Rr][Tt]|[Vv][Tt][Tt]|[Aa][Ss][Ss]|[Ss][Ss][Aa])$"}]


class SubtitleRequest(Shape):
    """`POST /api/files/{id}/subtitles`: a subtitle file (.srt, .vtt, .ass, .ssa)."""

    # The extension and the size limit are the subtitle module's to check (422 and 413).
    name: Annotated[str, Field(min_length=1, examples=["Heat.1995.en.srt"],
                               json_schema_extra=_subtitle_name),
                    BeforeValidator(validation.file_name)]
    size: Annotated[int, Field(ge=1, json_schema_extra={"maximum": MAX_SUBTITLE_SIZE}),
                    BeforeValidator(_size)]
    sha256: Sha256
    content_type: ContentType = None


# --- answers ---------------------------------------------------------------------------------


class ErrorAnswer(BaseModel):
    """Every refusal: a sentence a person can act on."""

    error: str = Field(examples=["sha256 must be 64 hexadecimal characters."])


class CheckAnswer(BaseModel):
    """One answer per entry, in order."""

    results: list[DuplicateCheckPublic]


class UploadAnswer(BaseModel):
    """An upload to send the bytes for."""

    upload: UploadPublic


class DuplicateAnswer(BaseModel):
    """The file is in the library already; nothing to send."""

    duplicate: Literal[True]
    file: FilePublic


class UploadStatusAnswer(BaseModel):
    """An upload, and the parts the store holds (to resume)."""

    upload: UploadPublic
    uploaded_parts: list[StoredPartPublic]


class PartsAnswer(BaseModel):
    """Signed PUT URLs, one per part asked for."""

    parts: list[PartUrlPublic]


class FileAnswer(BaseModel):
    """One file of the library."""

    file: FilePublic


class SubtitleAnswer(BaseModel):
    """A subtitle attached to its movie (`duplicate` when a repeated complete)."""

    duplicate: bool
    subtitle: SubtitlePublic
    file: FilePublic


def answer(model: BaseModel) -> dict[str, Any]:
    """An answer as JSON: the fields that were set, so each variant shows only its own."""
    return model.model_dump(exclude_unset=True, mode="json")


# --- operations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """What a view takes and answers, for its parsing and for the document."""

    summary: str
    answers: dict[int, Any]
    errors: tuple[int, ...]
    body: type[Shape] | None = None
    tags: tuple[str, ...] = ("files",)
    #: A page route (cookie only; refusals are pages, and no session redirects to sign in).
    page: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


ATTRIBUTE = "api_operation"


def operation(spec: Operation) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach `spec` to a view (wrappers made with functools.wraps keep it)."""

    def attach(view: Callable[..., Any]) -> Callable[..., Any]:
        setattr(view, ATTRIBUTE, spec)
        return view

    return attach


S = TypeVar("S", bound=Shape)


def parse(shape: type[S], data: Any) -> S:
    """Check `data` against `shape`; a refusal is InvalidInput naming the field."""
    try:
        return shape.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(_sentence(error)) from None


def _sentence(error: ValidationError) -> str:
    """The first problem pydantic found, as one sentence naming the field."""
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "The request body"
    return f"{where}: {first['msg']}."
