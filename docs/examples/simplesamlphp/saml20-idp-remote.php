<?php
// SimpleSAMLphp 1.19 (Debian 12: /etc/simplesamlphp/metadata/saml20-idp-remote.php): the
// Servicekonto as the portal's IdP, from its metadata at {{IDP_BASE_URL}}/saml/metadata.
// Replace every {{…}}. The tests of the Servicekonto (tests/interop/test_simplesamlphp.py) run
// SimpleSAMLphp with exactly this file.
$metadata['{{IDP_ENTITY_ID}}'] = [
    'name' => ['de' => 'Servicekonto'],
    'SingleSignOnService' => [
        // SimpleSAMLphp sends the AuthnRequest over HTTP-Redirect whenever this list offers it,
        // else over HTTP-POST: for HTTP-POST, delete the HTTP-Redirect line below.
        ['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', 'Location' => '{{IDP_BASE_URL}}/saml/sso/redirect'],
        ['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', 'Location' => '{{IDP_BASE_URL}}/saml/sso/post'],
    ],
    'SingleLogoutService' => [
        ['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', 'Location' => '{{IDP_BASE_URL}}/saml/slo/redirect'],
        ['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', 'Location' => '{{IDP_BASE_URL}}/saml/slo/post'],
    ],
    // The IdP's signing certificate (base64, without the PEM lines), from its metadata
    // (KeyDescriptor use="signing"). During a key rollover its metadata names two: list both
    // under 'keys' instead.
    'certData' => '{{IDP_CERTIFICATE}}',
    'sign.authnrequest' => true,
    'sign.logout' => true,
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
];
