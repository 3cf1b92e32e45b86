<?php
// A portal's page behind the Servicekonto login, with SimpleSAMLphp 1.19 (Debian 12). Replace
// every {{…}}. "?anmelden" logs in (SSO at the Servicekonto), "?abmelden" runs single logout;
// the page shows the NameID and the attributes the portal received. The tests of the
// Servicekonto (tests/interop/test_simplesamlphp.py) serve exactly this page.
require_once '/usr/share/simplesamlphp/lib/_autoload.php';

$as = new \SimpleSAML\Auth\Simple('{{AUTH_SOURCE}}');
$page = '{{PORTAL_URL}}';

if (isset($_GET['anmelden'])) {
    $as->requireAuth(['ReturnTo' => $page]);
}
if (isset($_GET['abmelden']) && $as->isAuthenticated()) {
    // Ends the portal's session, then single logout at the Servicekonto (which logs the
    // citizen out at the other portals too); back here afterwards.
    $as->logout(['ReturnTo' => $page . '?abgemeldet']);
}

$loggedIn = $as->isAuthenticated();
$nameId = $loggedIn ? $as->getAuthData('saml:sp:NameID') : null;
$seen = [
    'angemeldet' => $loggedIn,
    'nameid' => $nameId ? $nameId->getValue() : null,
    'nameid_format' => $nameId ? $nameId->getFormat() : null,
    'session_index' => $loggedIn ? $as->getAuthData('saml:sp:SessionIndex') : null,
    'idp' => $loggedIn ? $as->getAuthData('saml:sp:IdP') : null,
    'attributes' => $loggedIn ? $as->getAttributes() : [],
];
header('Content-Type: text/html; charset=utf-8');
header('Cache-Control: no-store');
?>
<!DOCTYPE html>
<html lang="de">
<head><meta charset="utf-8"><title>{{SP_NAME}}</title></head>
<body>
<h1>{{SP_NAME}}</h1>
<p id="status"><?= $loggedIn ? 'Sie sind angemeldet.' : 'Sie sind nicht angemeldet.' ?></p>
<pre id="saml"><?= htmlspecialchars(json_encode($seen, JSON_PRETTY_PRINT | JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), ENT_QUOTES, 'UTF-8') ?></pre>
<p><a href="?anmelden">Anmelden</a> · <a href="?abmelden">Abmelden</a></p>
</body>
</html>
