<?php
// SimpleSAMLphp 1.19 (Debian 12: /etc/simplesamlphp/config.php) as a portal (SAML SP) of the
// Servicekonto: the settings that matter for it. Replace every {{…}}; the tests of the
// Servicekonto (tests/interop/test_simplesamlphp.py) run SimpleSAMLphp with exactly this file.
$config = [
    // Where SimpleSAMLphp's www/ is served (Debian's apache.conf: Alias /simplesaml).
    'baseurlpath' => '{{SP_BASE_URL}}/simplesaml/',
    'certdir' => '{{CERT_DIR}}',
    'loggingdir' => '{{LOG_DIR}}',
    'datadir' => '{{DATA_DIR}}',
    'tempdir' => '{{TEMP_DIR}}',
    'metadatadir' => '{{CONFIG_DIR}}/metadata/',
    'metadata.sources' => [['type' => 'flatfile']],

    'secretsalt' => '{{SECRET_SALT}}',
    'auth.adminpassword' => '{{ADMIN_PASSWORD}}',
    'admin.protectindexpage' => true,
    // The Servicekonto fetches the portal's metadata from
    // {{SP_BASE_URL}}/simplesaml/module.php/saml/sp/metadata.php/<auth source>.
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,
    'technicalcontact_name' => 'Portalbetrieb',
    'technicalcontact_email' => 'portal@example.org',
    'timezone' => 'Europe/Berlin',
    'showerrors' => false,
    'errorreporting' => false,
    'trusted.url.domains' => [],

    'logging.level' => SimpleSAML\Logger::INFO,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',

    'enable.saml20-idp' => false,
    'module.enable' => ['core' => true, 'saml' => true, 'exampleauth' => false],

    // The Servicekonto answers with a cross-site POST to the AssertionConsumerService, and that
    // POST must bring SimpleSAMLphp's session cookie (the request's state is kept there). Over
    // https: SameSite=None; Secure. A test system on plain http cannot have SameSite=None
    // cookies (browsers want Secure with it): there the cookie has no SameSite attribute.
    'session.cookie.name' => 'SimpleSAMLSessionID',
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.authtoken.cookiename' => 'SimpleSAMLAuthToken',
    'session.cookie.secure' => str_starts_with('{{SP_BASE_URL}}', 'https://'),
    'session.cookie.samesite' => str_starts_with('{{SP_BASE_URL}}', 'https://') ? 'None' : null,
    'session.phpsession.httponly' => true,
    'session.duration' => 8 * 60 * 60,
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => '{{DATA_DIR}}',

    'language.default' => 'de',
    'language.available' => ['de', 'en'],
];
