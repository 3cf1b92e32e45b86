<?php
// SimpleSAMLphp 1.19 (Debian 12: /etc/simplesamlphp/authsources.php): one saml:SP auth source
// per portal, logging in at the Servicekonto. Replace every {{…}}; several portals are several
// such entries. The tests of the Servicekonto (tests/interop/test_simplesamlphp.py) run
// SimpleSAMLphp with exactly this entry.
$config['{{AUTH_SOURCE}}'] = [
    'saml:SP',
    // The entity ID registered at the Servicekonto (entity_id of the portal's policy file); the
    // portal's metadata is at {{SP_BASE_URL}}/simplesaml/module.php/saml/sp/metadata.php/{{AUTH_SOURCE}}
    'entityID' => '{{SP_ENTITY_ID}}',
    'idp' => '{{IDP_ENTITY_ID}}',
    'discoURL' => null,
    'name' => ['de' => '{{SP_NAME}}'],

    // The Servicekonto refuses unsigned AuthnRequests and LogoutRequests (its metadata says
    // WantAuthnRequestsSigned="true"): sign them, with RSA-SHA256. The certificate goes into
    // the portal's metadata.
    'privatekey' => '{{SP_KEY_FILE}}',
    'certificate' => '{{SP_CERT_FILE}}',
    'sign.authnrequest' => true,
    'sign.logout' => true,
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',

    // The NameID format the portal is registered for (name_id_format of its policy): transient
    // or persistent. Asking for another one gets InvalidNameIDPolicy.
    'NameIDPolicy' => [
        'Format' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:{{NAME_ID_FORMAT}}',
        'AllowCreate' => true,
    ],
    // The Servicekonto signs its responses and assertions (sign_response, sign_assertion).
    'WantAssertionsSigned' => true,
    // Single logout: SimpleSAMLphp offers HTTP-Redirect; the Servicekonto's LogoutRequests and
    // LogoutResponses are signed, so check them.
    'validate.logout' => true,
];
