"""A fake France Travail API on 127.0.0.1, with the behaviours the real one documents.

Unlike `loopback.py` (scripted GET replies), this server keeps state the way the APIs do:
* `POST /connexion/oauth2/access_token?realm=/partenaire`: client-credentials tokens,
  checked client id / secret / scopes, `expires_in` configurable; `revoke_tokens()`
  makes every issued token answer 401 (a token revoked before its expiry);
* `/stats/v1/...`: "Marché du travail" indicator endpoints (POST criteria, SAL_3 GET) and
  the ROME/FAP referential, answering `IndicateurRetour` for the requested cell;
* `/offres/v2/offres/search`: paging with `range=p-d` (at most 150, p <= 3000,
  d <= 3149, otherwise 400), 206 + `Content-Range: offres p-d/total` while more remain,
  200 on the last page, 204 with `*/0` when nothing matches, filters `departement`,
  `minCreationDate`, `maxCreationDate`;
* `fail_next(prefix, status, headers)`: the next request under `prefix` gets this answer
  instead (429 with `Retry-After`, 503...).
Every request is recorded (method, path, query, headers, body) for assertions.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CLIENT_ID = "tremplin-test-client"
CLIENT_SECRET = "s3cr3t-PLANTED-never-log-me"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeFranceTravail:
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    expires_in: int = 1499
    # Offers by département: list of (id, dateCreation ISO, commune, rome).
    offers: dict[str, list[dict]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    _valid_tokens: set[str] = field(default_factory=set)
    _issued: int = 0
    _failures: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ scripting
    def url(self, path: str) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    @property
    def token_url(self) -> str:
        return self.url("/connexion/oauth2/access_token")

    def revoke_tokens(self) -> None:
        with self._lock:
            self._valid_tokens.clear()

    def fail_next(self, prefix: str, status: int, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._failures.append((prefix, status, headers or {}))

    def seen(self, prefix: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    # ------------------------------------------------------------------ behaviour
    def handle(self, method: str, path: str, query: dict[str, str], headers, body: bytes):
        with self._lock:
            self.requests.append(Seen(method, path, query, headers, body))
            for i, (prefix, status, extra) in enumerate(self._failures):
                if path.startswith(prefix):
                    del self._failures[i]
                    return status, extra, b'{"message":"scripted failure"}'
        if path == "/connexion/oauth2/access_token" and method == "POST":
            return self._token(query, body)
        auth = headers.get("authorization", "")
        with self._lock:
            authorised = auth.startswith("Bearer ") and auth[7:] in self._valid_tokens
        if not authorised:
            return 401, {}, b'{"message":"invalid token"}'
        if path.startswith("/stats/"):
            return self._stats(method, path, query, body)
        if path == "/offres/v2/offres/search":
            return self._search(query)
        return 404, {}, b"{}"

    def _token(self, query: dict[str, str], body: bytes):
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if query.get("realm") != "/partenaire" or form.get("grant_type") != "client_credentials":
            return 400, {}, b'{"error":"invalid_request"}'
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            # Echo nothing of the request: the client must not be given a secret to leak.
            return (
                400,
                {},
                b'{"error":"invalid_client","error_description":"Client authentication failed"}',
            )
        if not form.get("scope"):
            return 400, {}, b'{"error":"invalid_scope"}'
        with self._lock:
            self._issued += 1
            token = f"tok-{self._issued}-abcdef"
            self._valid_tokens.add(token)
        payload = {
            "scope": form["scope"],
            "expires_in": self.expires_in,
            "token_type": "Bearer",
            "access_token": token,
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()

    def _stats(self, method: str, path: str, query: dict[str, str], body: bytes):
        if path.endswith("/referentiel/rechercherActivitesRomeFap"):
            pairs = [
                {"datMaj": "2024-04-21T17:13:44+02:00", "codeRome": "M1801", "codeFap": "M0Z60"}
            ]
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps({"romeFapList": pairs}).encode(),
            )
        parts = path.split("/")
        if "salaire-rome-fap" in parts:
            ttype, tcode = parts[-2], parts[-1]
            criteria = {
                "codeTypeTerritoire": ttype,
                "codeTerritoire": tcode,
                "codeActivite": query.get("codeRome", ""),
            }
            code, kind = "SAL_3", "valeurPrincipaleMontant"
        else:
            criteria = json.loads(body or b"{}")
            code = {
                "stat-demandeurs": "DE_1",
                "stat-offres": "OFF_1",
                "stat-embauches": "EMB_1",
                "stat-perspective-employeur": "PERSP_2",
            }[parts[-1]]
            kind = "valeurPrincipaleTaux" if code == "PERSP_2" else "valeurPrincipaleNombre"
        entry = {
            "codeTypeTerritoire": criteria["codeTypeTerritoire"],
            "codeTerritoire": criteria["codeTerritoire"],
            "codeTypeActivite": "ROME",
            "codeActivite": criteria["codeActivite"],
            "codeNomenclature": "A",
            "codeTypePeriode": "TRIMESTRE",
            "codePeriode": "2025T2",
            "valeurPrincipaleNom": "valeur",
            kind: 42,
        }
        payload = {"codeIndicateur": code, "listeValeursParPeriode": [entry]}
        return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()

    def _search(self, query: dict[str, str]):
        first, _, last = query.get("range", "0-149").partition("-")
        p, d = int(first), int(last)
        if d < p or d - p >= 150 or p > 3000 or d > 3149:
            return 400, {}, b'{"message":"range invalide"}'
        matches = []
        for dep, offers in sorted(self.offers.items()):
            if query.get("departement") and dep != query["departement"]:
                continue
            for offer in offers:
                created = offer["dateCreation"][:19]
                if "minCreationDate" in query and created < query["minCreationDate"][:19]:
                    continue
                if "maxCreationDate" in query and created >= query["maxCreationDate"][:19]:
                    continue
                matches.append(offer)
        matches.sort(key=lambda o: o["dateCreation"], reverse=True)
        total = len(matches)
        if total == 0:
            return 204, {"Content-Range": "offres */0"}, b""
        page = matches[p : d + 1]
        last_index = p + len(page) - 1
        status = 206 if last_index < total - 1 else 200
        body = json.dumps({"resultats": page, "filtresPossibles": []}).encode()
        headers = {
            "Content-Type": "application/json",
            "Content-Range": f"offres {p}-{last_index}/{total}",
        }
        return status, headers, body

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeFranceTravail:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


def make_offer(number: int, dep: str, created: datetime, rome: str = "D1102") -> dict:
    """An offer in the API's shape, recruiter fields included (the parser must drop them)."""
    commune = f"{dep}{number % 1000:03d}" if len(dep) == 2 else f"{dep}{number % 100:02d}"
    return {
        "id": f"T{number:06d}",
        "intitule": "Boulanger (H/F)",
        "dateCreation": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "lieuTravail": {"libelle": f"{dep} - VILLE", "commune": commune},
        "romeCode": rome,
        "typeContrat": "CDI",
        "salaire": {"libelle": "Mensuel de 2000.0 Euros sur 12.0 mois"},
        "entreprise": {"nom": "Boulangerie Secrète", "description": "x"},
        "contact": {
            "nom": "Jeanne Recruteuse",
            "telephone": "0612345678",
            "courriel": "jeanne@example.org",
        },
        "agence": {"telephone": "0100000000", "courriel": "agence@example.org"},
    }


def _handler(api: FakeFranceTravail) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = api.handle(self.command, parts.path, query, headers, body)
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _serve  # noqa: N815
        do_POST = _serve  # noqa: N815

    return Handler


@contextmanager
def fake_api(**kwargs) -> Iterator[FakeFranceTravail]:
    api = FakeFranceTravail(**kwargs).start()
    try:
        yield api
    finally:
        api.stop()
