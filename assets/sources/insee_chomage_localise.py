"""INSEE — taux de chômage localisés by département and région, quarterly since 1982.

Published as one legacy Excel workbook (`sl_etc_<YYYY>T<Q>.xls`, BIFF8), replaced every
quarter. Each data sheet has title rows, a header `Code, Libellé, T1_1982 … T4_2021`, one
row per area, then notes; one column per quarter. Raw turns it into long form: one row per
area × quarter, with the rate as published (text, percent).

Quirks handled here:
* the sheets (`Département`, `Région`) are recognised by their title/name and their codes,
  and the header row by its content, so title rows, a renamed sheet or moved notes do not
  matter;
* codes 10-95 are numeric cells: read back as text, without `.0`, zero-padded to two
  characters (`1` would become `01`), `2A` / `971` kept as they are;
* the Région sheet holds two national rows, both coded `00`: France hors Mayotte and France
  métropolitaine. They become area type `france` with area codes `france_hors_mayotte` and
  `france_metropolitaine` (from the label; an unknown national label is refused);
* overseas départements and régions have no rate before 2014 (nor France hors Mayotte):
  those cells are empty and stay NULL, never 0;
* Mayotte (976) is not in the file at all: INSEE publishes no localised rate for it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from datetime import timedelta

import pandas as pd

from assets.ingest.landing import LandedFile
from assets.ingest.members import iter_members
from assets.ingest.raw import ParsedTable, ParseError, add_provenance
from assets.ingest.spec import Download, Partitioning, SourceSpec
from assets.ingest.validation import TableContract
from assets.ingest.workbook import read_workbook

log = logging.getLogger(__name__)

SLUG = "insee_chomage_localise"
TABLE = "rates"
TABLES = (TABLE,)

SPEC = SourceSpec(
    slug=SLUG,
    publisher="INSEE",
    title="Taux de chômage localisés par département et région (trimestriels)",
    landing_page="https://www.insee.fr/fr/statistiques/2012804",
    licence="Licence Ouverte / Etalab 2.0 (INSEE open data terms)",
    cadence="quarterly (file replaced each quarter; older file names may disappear)",
    downloads=(
        Download(
            url="https://www.insee.fr/fr/statistiques/fichier/2012804/sl_etc_{year}T{quarter}.xls",
            file_name="sl_etc_{year}T{quarter}.xls",
            format="xls",
        ),
    ),
    # `.xls*` also takes an xlsx should INSEE switch formats; calamine reads both.
    mirror_patterns=("sl_etc_*T*.xls*",),
    notes="Mayotte (976) has no localised rate; overseas rates start in 2014-Q1.",
    # Quarter Q is published about 75 days after it ends (mid-March, June, September,
    # December). Each file is the whole series up to its quarter: a partition per release,
    # and staging reads the newest release (older ones stay for revisions analysis).
    schedule="0 7 20 3,6,9,12 *",
    max_age=timedelta(days=120),
    partitioning=Partitioning(
        period="quarterly",
        start="2014-01-01",
        file_period=r"sl_etc_(?P<year>\d{4})T(?P<quarter>[1-4])",
    ),
)

AREA_TYPES = ("departement", "region", "france")
FRANCE_CODES = ("france_hors_mayotte", "france_metropolitaine", "france_entiere")
RAW_COLUMNS = (
    "area_type",
    "area_code",
    "published_code",
    "area_label",
    "quarter",
    "rate",
    "vintage",
    "source_sheet",
)
AREA_CODE = r"^(?:[0-9]{2}|2[AB]|97[1-8]|france_[a-z_]+)$"

CONTRACTS: dict[str, TableContract] = {
    TABLE: TableContract(
        columns=RAW_COLUMNS,
        # 100 départements and 19 régions/national rows over 160 quarters in 2021-Q4.
        min_rows=10_000,
        patterns={
            "area_code": AREA_CODE,
            "quarter": r"^(?:19|20)[0-9]{2}-Q[1-4]$",
            "vintage": r"^(?:19|20)[0-9]{2}-Q[1-4]$",
            "rate": r"^[0-9]{1,2}(?:\.[0-9]+)?$",
        },
        not_null=("area_type", "area_code", "area_label", "quarter", "vintage"),
        unique=(("area_type", "area_code", "quarter"),),
        accepted={"area_type": AREA_TYPES},
    ),
}

# `T4_2021` as published; `T4 2021`, `2021-T4` and `2021T4` also read.
QUARTER = re.compile(
    r"^(?:T(?P<q1>[1-4])[ _-]?(?P<y1>(?:19|20)\d{2})"
    r"|(?P<y2>(?:19|20)\d{2})[ _-]?[TQ](?P<q2>[1-4]))$",
    re.IGNORECASE,
)
CODE_CELL = re.compile(r"^(?:\d{1,3}|2[AB])$", re.IGNORECASE)
HEADER_SEARCH_ROWS = 20


def _plain(text: object) -> str:
    """Lower case, no accents, single spaces: for matching titles, names and labels."""
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return ""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return " ".join(text.lower().split())


def _cell(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    if not text or text.lower() == "nan":
        return None
    return re.sub(r"^(\d+)\.0+$", r"\1", text)


def quarter_of(header: str) -> str | None:
    """`T4_2021` -> `2021-Q4`; None for a header that is not a quarter."""
    match = QUARTER.match(header.strip())
    if not match:
        return None
    year = match["y1"] or match["y2"]
    quarter = match["q1"] or match["q2"]
    return f"{year}-Q{quarter}"


def vintage_of(file_name: str) -> str | None:
    """`sl_etc_2021T4.xls` -> `2021-Q4` (the last quarter the file covers)."""
    match = re.search(r"((?:19|20)\d{2})T([1-4])", file_name, re.IGNORECASE)
    return f"{match[1]}-Q{match[2]}" if match else None


def _header_row(frame: pd.DataFrame) -> int | None:
    """The row reading `Code, Libellé, <quarters...>` (first cells), or None."""
    for row in range(min(HEADER_SEARCH_ROWS, len(frame))):
        cells = [_cell(v) for v in frame.iloc[row].tolist()]
        if len(cells) < 3:
            continue
        first, second = _plain(cells[0]), _plain(cells[1])
        quarters = [c for c in cells[2:] if c and quarter_of(c)]
        if first.startswith("code") and second.startswith("libelle") and quarters:
            return row
    return None


def _sheet_kind(name: str, frame: pd.DataFrame, header: int, codes: list[str]) -> str:
    """`departement` or `region`, from the sheet name or title, else from the codes."""
    words = " ".join([_plain(name), *(_plain(v) for v in frame.iloc[:header, 0].tolist())])
    says_dep = "departement" in words
    says_reg = "region" in words and not says_dep
    if says_dep != says_reg:
        return "departement" if says_dep else "region"
    if any(re.fullmatch(r"2[AB]|97\d", c, re.IGNORECASE) for c in codes) or len(codes) > 40:
        return "departement"
    return "region"


def _france_code(label: str, *, file_name: str, sheet: str) -> str:
    plain = _plain(label)
    if "metropol" in plain:
        return "france_metropolitaine"
    if "hors mayotte" in plain:
        return "france_hors_mayotte"
    if plain in ("france", "france entiere"):
        return "france_entiere"
    raise ParseError(
        f"{SLUG}: {file_name}, sheet {sheet!r}: national row (code 00) with an unknown label "
        f"{label!r}; expected FRANCE (HORS MAYOTTE) or FRANCE METROPOLITAINE"
    )


def _sheet_rows(
    name: str, frame: pd.DataFrame, header: int, file_name: str
) -> tuple[str, pd.DataFrame]:
    """The area rows under the header, until the first row that is not an area (notes)."""
    body = frame.iloc[header + 1 :]
    rows: list[int] = []
    ended_at: int | None = None
    for position in range(len(body)):
        code = _cell(body.iloc[position, 0])
        if code is not None and CODE_CELL.match(code) and _cell(body.iloc[position, 1]):
            if ended_at is not None:
                raise ParseError(
                    f"{SLUG}: {file_name}, sheet {name!r}: area row {code!r} (row "
                    f"{header + position + 2}) after the notes that end the table"
                )
            rows.append(position)
        elif rows and ended_at is None:
            ended_at = position
    if not rows:
        raise ParseError(f"{SLUG}: {file_name}, sheet {name!r}: no area row under the header")
    table = body.iloc[rows]
    codes = [_cell(v) or "" for v in table.iloc[:, 0].tolist()]
    return _sheet_kind(name, frame, header, codes), table


def parse_sheet(
    name: str, frame: pd.DataFrame, header: int, file_name: str
) -> tuple[str, pd.DataFrame]:
    """One data sheet in long form (area_type, area_code, ... quarter, rate)."""
    kind, table = _sheet_rows(name, frame, header, file_name)
    headers = [_cell(v) or "" for v in frame.iloc[header].tolist()]
    quarter_columns = {i: quarter_of(h) for i, h in enumerate(headers) if i >= 2}
    quarter_columns = {i: q for i, q in quarter_columns.items() if q}
    ignored = [h for i, h in enumerate(headers) if i >= 2 and i not in quarter_columns and h]
    if ignored:
        log.warning("%s: %s, sheet %r: columns ignored %s", SLUG, file_name, name, ignored)
    seen = list(quarter_columns.values())
    if len(seen) != len(set(seen)):
        raise ParseError(f"{SLUG}: {file_name}, sheet {name!r}: a quarter column is repeated")
    records = []
    for _, row in table.iterrows():
        published = _cell(row.iloc[0]).upper()
        label = _cell(row.iloc[1])
        if published.strip("0") == "":
            area_type, code = "france", _france_code(label, file_name=file_name, sheet=name)
        else:
            area_type, code = kind, published.zfill(2)
        for position, quarter in quarter_columns.items():
            rate = _cell(row.iloc[position])
            records.append((area_type, code, published, label, quarter, rate))
    long = pd.DataFrame.from_records(
        records,
        columns=["area_type", "area_code", "published_code", "area_label", "quarter", "rate"],
    ).astype("str")
    long["rate"] = long["rate"].str.replace(",", ".", regex=False)
    return kind, long


def parse_workbook(data: bytes, member_name: str, landed: LandedFile) -> pd.DataFrame:
    sheets = read_workbook(data, slug=SLUG, file_name=member_name)
    parts: dict[str, list[pd.DataFrame]] = {"departement": [], "region": []}
    for name, frame in sheets.items():
        header = _header_row(frame)
        if header is None:
            continue
        kind, long = parse_sheet(name, frame, header, member_name)
        long["source_sheet"] = name
        parts[kind].append(long)
    missing = [kind for kind, found in parts.items() if not found]
    if missing:
        raise ParseError(
            f"{SLUG}: {member_name}: no {' or '.join(missing)} sheet with a header "
            f"'Code, Libellé, T1_1982 …' in its first {HEADER_SEARCH_ROWS} rows "
            f"(sheets: {list(sheets)})"
        )
    frame = pd.concat([p for found in parts.values() for p in found], ignore_index=True)
    # A national row repeated on two sheets is one row; two different rates are an error.
    keys = ["area_type", "area_code", "quarter"]
    frame = frame.drop_duplicates([*keys, "rate"])
    clash = frame[frame.duplicated(keys, keep=False)]
    if len(clash):
        sample = clash.head(4)[[*keys, "rate", "source_sheet"]].to_dict("records")
        raise ParseError(f"{SLUG}: {member_name}: conflicting rates for one area: {sample}")
    last_quarter = frame["quarter"].max()
    frame["vintage"] = vintage_of(member_name) or last_quarter
    frame = frame.reset_index(drop=True)[list(RAW_COLUMNS)]
    frame = add_provenance(frame, landed)
    if landed.file_name != member_name:
        frame["_source_file"] = f"{landed.file_name}!{member_name}"
    return frame


def parse(files: Iterable[LandedFile]) -> dict[str, ParsedTable]:
    """The one landed workbook in long form; several vintages at once are refused."""
    files = tuple(files)
    found = [m for m in iter_members(files, "sl_etc_*.xls*") if not m[0].startswith("~$")]
    if len(found) != 1:
        names = sorted(f.file_name for f in files)
        raise ParseError(
            f"{SLUG}: expected exactly one sl_etc_<YYYY>T<Q>.xls among the landed files, "
            f"found {len(found)} in {names}"
        )
    member_name, opener, landed = found[0]
    with opener() as handle:
        frame = parse_workbook(handle.read(), member_name, landed)
    log.info(
        "%s: parsed %s (%d rows, %d areas, quarters %s to %s)",
        SLUG,
        member_name,
        len(frame),
        frame[["area_type", "area_code"]].drop_duplicates().shape[0],
        frame["quarter"].min(),
        frame["quarter"].max(),
    )
    partition = SPEC.partitioning.key_for_file(member_name) if SPEC.partitioning else None
    return {TABLE: ParsedTable(TABLE, frame, (landed,), partition=partition)}
