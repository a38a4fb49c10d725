// The one message catalogue of the client, in French and English, with
// interpolation ({name}) and plurals (Intl.PluralRules on {count}), and the
// localized formatting of dates and times. No other module holds text
// shown to people.

export type Lang = 'fr' | 'en';
export const langs: Lang[] = ['fr', 'en'];

type Plural = { one?: string; other: string; zero?: string };
type Entry = string | Plural;

const fr = {
  'lang.name': 'Français',
  'lang.switch': 'English',
  'lang.label': 'Langue',

  'common.cancel': 'Annuler',
  'common.close': 'Fermer',
  'common.save': 'Enregistrer',
  'common.back': 'Retour',
  'common.loading': 'Chargement…',
  'common.retry': 'Réessayer',
  'common.delete': 'Supprimer',
  'common.confirm': 'Confirmer',
  'common.external': 'Externe',
  'common.externalLong': 'Correspondant externe',
  'common.you': 'Vous',
  'common.search': 'Rechercher',
  'common.continue': 'Continuer',

  'auth.email': 'Adresse e-mail professionnelle',
  'auth.password': 'Mot de passe',
  'auth.newPassword': 'Nouveau mot de passe',
  'auth.displayName': 'Nom affiché (facultatif)',
  'auth.displayNameHint': 'Par défaut, votre nom est déduit de votre adresse (prénom.nom@…).',
  'auth.passwordHint': 'Au moins 10 caractères ; une phrase facile à retenir convient très bien.',
  'auth.signIn': 'Se connecter',
  'auth.signInTitle': 'Connexion',
  'auth.signInLead': 'La messagerie sécurisée des agents publics.',
  'auth.register': 'Créer un compte',
  'auth.registerTitle': 'Créer votre compte',
  'auth.registerLead': 'Réservé aux adresses des administrations servies par ce serveur : {domains}.',
  'auth.noAccount': 'Pas encore de compte ?',
  'auth.haveAccount': 'Déjà un compte ?',
  'auth.forgot': 'Mot de passe oublié ?',
  'auth.pendingTitle': 'Demande enregistrée',
  'auth.pendingBody': 'Un administrateur doit valider votre compte. Vous pourrez ensuite vous connecter avec votre adresse et votre mot de passe.',
  'auth.verifyTitle': 'Vérifiez votre adresse',
  'auth.verifyBody': 'Nous avons envoyé un lien et un code à 10 chiffres à {email}. Ouvrez le lien, ou saisissez le code ici.',
  'auth.code': 'Code à 10 chiffres',
  'auth.verifyPasswordLead': 'Pour confirmer votre adresse, saisissez le mot de passe choisi à l’inscription.',
  'auth.verifyPasswordHint': 'Si vous ne reconnaissez pas ce mot de passe, quelqu’un d’autre a demandé ce compte à votre nom : inscrivez-vous à nouveau, son inscription sera effacée.',
  'people.tagHint': 'Repère qui distingue deux personnes du même nom',
  'auth.verify': 'Vérifier',
  'auth.verified': 'Adresse vérifiée. Vous pouvez vous connecter.',
  'auth.resetTitle': 'Réinitialiser le mot de passe',
  'auth.resetRequest': 'Envoyer un lien',
  'auth.resetSent': 'Si un compte existe pour cette adresse, un lien de réinitialisation vient d’être envoyé.',
  'auth.resetNoMail': 'Ce service n’envoie pas d’e-mails : pour réinitialiser votre mot de passe, adressez-vous à un administrateur de votre structure.',
  'auth.resetDone': 'Mot de passe changé. Connectez-vous avec le nouveau.',
  'auth.renewTitle': 'Renouveler votre compte',
  'auth.renewed': 'Votre compte est renouvelé. Vous pouvez vous connecter.',
  'auth.inviteTitle': 'Invitation',
  'auth.inviteBody': '{by} vous invite à rejoindre « {room} » sur la messagerie de l’administration. Choisissez un mot de passe pour activer votre accès.',
  'auth.inviteAccept': 'Accepter l’invitation',
  'auth.signedOut': 'Vous êtes déconnecté.',

  'setup.title': 'Première mise en service',
  'setup.lead': 'Créez le premier compte administrateur et indiquez les domaines des adresses autorisées à s’inscrire.',
  'setup.domains': 'Domaines autorisés (séparés par des virgules)',
  'setup.fingerprint': 'Empreinte de l’autorité de certification locale (SHA-256) : comparez-la avec celle affichée par le serveur avant d’installer le certificat.',
  'setup.submit': 'Créer l’administrateur',
  'setup.done': 'Le compte administrateur est créé. Connectez-vous.',
  'setup.notNeeded': 'Ce nœud est déjà configuré.',

  'err.email_domain_not_allowed': 'Cette adresse n’appartient pas à une administration servie par ce serveur. L’inscription est réservée aux adresses {domains}. Les correspondants externes rejoignent une conversation sur invitation.',
  'err.email_invalid': 'Cette adresse e-mail n’est pas valide.',
  'err.weak_password': 'Mot de passe trop faible.',
  'err.password_too_short': 'Mot de passe trop court : au moins 10 caractères.',
  'err.password_too_long': 'Mot de passe trop long.',
  'err.password_invalid': 'Ce mot de passe contient des caractères non acceptés.',
  'err.password_too_common': 'Ce mot de passe est trop courant : choisissez-en un autre.',
  'err.password_contains_personal_info': 'Le mot de passe ne doit pas contenir votre nom ou votre administration.',
  'err.password_repeated_character': 'Le mot de passe ne doit pas répéter le même caractère.',
  'err.bad_credentials': 'Adresse ou mot de passe incorrect.',
  'err.account_inactive': 'Ce compte n’est pas encore actif : adresse à vérifier, validation par un administrateur en attente, ou compte désactivé.',
  'err.account_expired': 'Votre compte a expiré : un lien de renouvellement vous a été envoyé par e-mail.',
  'err.invalid_token': 'Ce lien ou ce code n’est pas valide ou a expiré.',
  'err.setup_done': 'Ce nœud a déjà un administrateur.',
  'err.rate_limited': 'Trop de tentatives. Réessayez dans quelques instants.',
  'err.forbidden': 'Action non autorisée.',
  'err.not_found': 'Introuvable.',
  'err.conflict': 'Déjà fait, ou en contradiction avec l’état actuel.',
  'err.external_not_allowed': 'Les correspondants externes ne peuvent pas faire cela ici.',
  'err.last_owner': 'Vous êtes le dernier propriétaire : nommez d’abord un autre propriétaire.',
  'err.too_many_invitations': 'Trop de vos invitations attendent une réponse : retirez-en ou attendez qu’elles soient acceptées.',
  'err.not_member': 'Pas (ou plus) membre de cette conversation.',
  'err.unavailable': 'Service momentanément indisponible.',
  'err.home_unreachable': 'L’administration qui héberge cette discussion ne répond pas : le message partira dès son retour.',
  'err.network': 'Connexion au serveur impossible. Vérifiez votre réseau.',
  'err.generic': 'Une erreur est survenue.',
  'err.gone': 'Ce message a été supprimé.',
  'err.too_large': 'Trop long.',

  'conn.offline': 'Hors ligne — les messages partiront au retour de la connexion.',
  'conn.connecting': 'Connexion…',

  'rooms.title': 'Discussions',
  'rooms.search': 'Rechercher une discussion',
  'rooms.searchShortcut': 'Rechercher une discussion (Ctrl+K)',
  'rooms.empty': 'Aucune discussion pour l’instant. Commencez par écrire à un collègue.',
  'rooms.noMatch': 'Aucune discussion ne correspond.',
  'rooms.invitations': 'Invitations',
  'rooms.invitedBy': 'Invitation de {name}',
  'rooms.newDM': 'Nouveau message',
  'rooms.newGroup': 'Nouveau groupe',
  'rooms.forums': 'Forums',
  'rooms.unread': { one: '{count} message non lu', other: '{count} messages non lus' },
  'rooms.mentions': { one: '{count} mention', other: '{count} mentions' },
  'rooms.direct': 'Conversation privée',
  'rooms.group': 'Groupe',
  'rooms.forum': 'Forum',
  'rooms.encryptedPreview': 'Message chiffré',
  'rooms.deletedPreview': 'Message supprimé',
  'rooms.filePreview': 'Fichier',
  'rooms.previewBy': '{name} : {text}',
  'rooms.select': 'Choisissez une discussion, ou commencez-en une.',
  'rooms.list': 'Liste des discussions',

  'room.members': { one: '{count} membre', other: '{count} membres' },
  'room.info': 'Informations sur la discussion',
  'room.back': 'Retour aux discussions',
  'room.externals': 'Ouvert aux externes',
  'room.encrypted': 'Chiffrée de bout en bout',
  'room.scannedFiles': 'Fichiers vus par l’antivirus',
  'room.scannedFilesHint': 'Ce serveur exige que l’antivirus reçoive la clé de chaque fichier envoyé ici : il peut lire les fichiers le temps de l’analyse. Les messages restent chiffrés de bout en bout.',
  'room.invitation': '{name} vous invite à rejoindre cette discussion.',
  'room.accept': 'Rejoindre',
  'room.decline': 'Refuser',
  'room.loadingHistory': 'Chargement de l’historique…',
  'room.start': 'Début de la discussion',
  'room.jumpBottom': 'Aller aux derniers messages',
  'room.online': 'En ligne',
  'room.leave': 'Quitter la discussion',
  'room.leaveConfirm': 'Quitter « {name} » ?',
  'room.invite': 'Inviter des personnes',
  'room.inviteExternal': 'Inviter un externe par e-mail',
  'room.inviteExternalHint': 'Adresse e-mail du correspondant externe',
  'room.inviteExternalDone': 'Invitation envoyée à {email}.',
  'room.inviteExternalApproval': 'Invitation enregistrée, mais aucun e-mail n’est parti : ce service n’envoie pas d’e-mails. Un administrateur doit transmettre le lien d’invitation à {email}.',
  'room.inviteExternalPending': '{email} a déjà une invitation en attente : cette discussion s’y ajoute, sans nouvel e-mail.',
  'room.inviteExternalPeer': '{email} est un agent d’une administration fédérée : il est invité comme agent, sans e-mail.',
  'room.invited': 'Invitation envoyée.',
  'room.role.owner': 'Propriétaire',
  'room.role.moderator': 'Modérateur',
  'room.role.member': 'Membre',
  'room.state.invited': 'invité',
  'room.remove': 'Retirer',
  'room.roleOf': 'Rôle de {name}',
  'room.membersTitle': 'Membres',
  'room.settings': 'Réglages',
  'room.name': 'Nom',
  'room.topic': 'Sujet',
  'room.allowExternals': 'Accepter des correspondants externes',

  'tl.today': 'Aujourd’hui',
  'tl.yesterday': 'Hier',
  'tl.edited': '(modifié)',
  'tl.deleted': 'Message supprimé',
  'tl.removedByServer': 'retiré du serveur',
  'tl.removedByServerHint': 'Le serveur a retiré ce message chiffré ; son auteur ne l’a pas supprimé. Ceux qui l’avaient déjà déchiffré le lisent encore.',
  'tl.file': 'Fichier : {name}',
  'tl.replyTo': 'En réponse à {name}',
  'tl.replyUnknown': 'En réponse à un message plus ancien',
  'tl.pending': 'Envoi en attente',
  'tl.waitingConnection': 'En attente de la connexion',
  'tl.sent': 'Envoyé',
  'tl.read': 'Lu',
  'tl.failed': 'Échec de l’envoi',
  'tl.readBy': 'Lu par {names}',
  'tl.reply': 'Répondre',
  'tl.edit': 'Modifier',
  'tl.react': 'Réagir',
  'tl.reactWith': 'Réagir avec {key}',
  'tl.reactions': '{key} : {names}',
  'tl.deleteConfirm': 'Supprimer ce message pour tout le monde ?',
  'tl.actions': 'Actions sur le message',
  'tl.created': '{name} a créé la discussion',
  'tl.member.invite': '{name} a invité {target}',
  'tl.member.join': '{target} a rejoint la discussion',
  'tl.member.leave': '{target} a quitté la discussion',
  'tl.member.kick': '{name} a retiré {target}',
  'tl.member.ban': '{name} a banni {target}',
  'tl.member.unban': '{name} a levé le bannissement de {target}',
  'tl.member.role': '{name} a nommé {target} {role}',
  'tl.settings.name': '{name} a renommé la discussion en « {value} »',
  'tl.settings.topic': '{name} a changé le sujet',
  'tl.settings.externals': '{name} a changé l’accès des externes',
  'tl.typing1': '{a} écrit…',
  'tl.typing2': '{a} et {b} écrivent…',
  'tl.typingMany': 'Plusieurs personnes écrivent…',
  'tl.messages': 'Messages',

  'composer.placeholder': 'Écrire un message',
  'composer.label': 'Message à {room}',
  'composer.send': 'Envoyer',
  'composer.attach': 'Joindre un fichier',
  'composer.camera': 'Prendre une photo',
  'room.dropHere': 'Déposez les fichiers ici pour les envoyer',
  'file.unit.b': '{n} o',
  'file.unit.kb': '{n} ko',
  'file.unit.mb': '{n} Mo',
  'file.unit.gb': '{n} Go',
  'file.preparing': 'Chiffrement… {percent} %',
  'file.uploading': 'Envoi… {percent} %',
  'file.finishing': 'Vérification par le serveur…',
  'file.posting': 'Publication…',
  'file.cancel': 'Annuler l’envoi de {name}',
  'file.failed': 'Envoi impossible : {reason}',
  'file.dismiss': 'Retirer',
  'file.download': 'Télécharger',
  'file.view': 'Afficher {name} en grand',
  'viewer.close': 'Fermer',
  'file.downloadLabel': 'Télécharger {name}',
  'file.downloading': 'Téléchargement… {percent} %',
  'file.downloadFailed': 'Téléchargement impossible : {reason}',
  'file.open': 'Ouvrir l’image {name}',
  'file.pending': 'Analyse antivirus en cours…',
  'file.clean': 'Vérifié par l’antivirus',
  'file.policyChecked': 'Vérifié par le serveur (sans antivirus)',
  'file.unscanned': 'Chiffré de bout en bout : non analysé par le serveur',
  'file.quarantined': '« {name} » supprimé par l’antivirus : {reason}',
  'file.quarantinedShort': 'supprimé par l’antivirus : {reason}',
  'file.code.infected': 'fichier infecté',
  'file.code.blocked_type': 'type de fichier interdit',
  'file.code.archive_bomb': 'archive qui se décompresse démesurément',
  'file.code.archive_nested': 'archives imbriquées trop profondément',
  'file.code.archive_encrypted': 'archive protégée par un mot de passe',
  'file.code.archive_invalid': 'archive endommagée',
  'file.code.image_too_large': 'image trop grande',
  'file.code.image_invalid': 'image illisible',
  'file.code.undecryptable': 'fichier chiffré impossible à ouvrir',
  'file.code.scanner_unavailable': 'antivirus indisponible',
  'file.code.too_large': 'fichier trop volumineux',
  'file.code.mismatch': 'ce n’est pas le fichier annoncé',
  'file.code.other': 'fichier refusé',
  'file.err.too_large': 'fichier trop volumineux pour ce serveur',
  'file.err.quota_exceeded': 'votre espace de stockage est plein',
  'file.err.too_many_uploads': 'trop d’envois inachevés',
  'file.err.blocked_type': 'type de fichier interdit (programmes, scripts, installateurs…)',
  'file.err.not_encrypted': 'fichier non chiffré refusé dans une conversation chiffrée',
  'file.err.network': 'connexion au serveur perdue',
  'file.err.scan_pending': 'le fichier est encore en cours d’analyse antivirus',
  'file.err.forbidden': 'action non autorisée',
  'file.err.not_found': 'fichier introuvable ou supprimé',
  'file.err.not_in_group': 'cet appareil n’a pas encore les clés de la conversation',
  'file.err.generic': 'une erreur est survenue',
  'composer.replyingTo': 'Réponse à {name}',
  'composer.editing': 'Modification du message',
  'composer.cancelReply': 'Annuler la réponse',
  'composer.cancelEdit': 'Annuler la modification',
  'composer.hint': 'Entrée pour envoyer, Maj+Entrée pour aller à la ligne',
  'composer.mentionList': 'Personnes à mentionner',

  'dm.title': 'Nouveau message',
  'dm.search': 'Nom d’un agent',
  'dm.hint': 'Tapez le début d’un prénom ou d’un nom.',
  'dm.none': 'Personne ne correspond.',
  'dm.results': 'Résultats de l’annuaire',
  'dir.admin': 'Administration : {name}',
  'dir.partial': 'Certaines administrations n’ont pas répondu à temps : la liste peut être incomplète.',

  'group.title': 'Nouveau groupe',
  'group.name': 'Nom du groupe',
  'group.topic': 'Sujet (facultatif)',
  'group.externals': 'Accepter des correspondants externes (invités par e-mail)',
  'group.forum': 'Forum ouvert à tous les agents (non chiffré, listé dans l’annuaire des forums)',
  'group.people': 'Ajouter des personnes',
  'group.create': 'Créer',
  'group.selected': 'Personnes invitées',

  'forums.title': 'Forums',
  'forums.search': 'Rechercher un forum',
  'forums.join': 'Rejoindre',
  'forums.open': 'Ouvrir',
  'forums.none': 'Aucun forum ne correspond.',
  'forums.members': { one: '{count} membre', other: '{count} membres' },

  'profile.title': 'Profil et appareils',
  'profile.open': 'Profil, réglages et appareils',
  'profile.name': 'Nom affiché',
  'profile.email': 'Adresse e-mail (visible de vous seul)',
  'profile.org': 'Administration',
  'profile.saved': 'Enregistré.',
  'profile.devices': 'Appareils connectés',
  'profile.thisDevice': 'Cet appareil',
  'profile.lastSeen': 'Vu {when}',
  'profile.revoke': 'Déconnecter',
  'profile.revokeConfirm': 'Déconnecter cet appareil ?',
  'profile.signOut': 'Se déconnecter',
  'profile.notifications': 'Notifications',
  'profile.notifEnable': 'Activer les notifications',
  'profile.notifOn': 'Les notifications sont activées pour les messages privés et les mentions, quand l’onglet est en arrière-plan.',
  'profile.notifDenied': 'Les notifications sont bloquées par le navigateur. Pour les autoriser : cliquez sur le cadenas (ou l’icône de réglages) à gauche de l’adresse, ouvrez « Notifications », choisissez « Autoriser », puis rechargez la page. Sur un téléphone : Réglages du navigateur › Paramètres des sites › Notifications.',
  'profile.notifUnsupported': 'Ce navigateur ne prend pas en charge les notifications.',
  'profile.appearance': 'Le thème clair ou sombre suit le réglage de votre système.',

  'tl.e2e.add': '{name} a ajouté {target} au chiffrement',
  'tl.e2e.remove': '{name} a retiré {target} du chiffrement',
  'tl.e2e.removedMe': '{name} vous a retiré du chiffrement : cet appareil ne lit plus cette conversation',
  'tl.e2e.device': '{name} a ajouté l’appareil « {device} »',
  'tl.e2e.deviceRemove': 'L’appareil « {device} » de {name} a été retiré du chiffrement',
  'tl.e2e.welcome': 'Cet appareil a reçu les clés de la conversation',
  'tl.e2e.founded': '{name} a activé le chiffrement de bout en bout',
  'tl.e2e.unverified': '— appareil non vérifié : comparez à nouveau le numéro de sécurité.',
  'tl.e2e.refused': 'Changement du chiffrement refusé et ignoré : il ne vient pas d’un membre de la conversation, ou ajoute un appareil que le serveur ne connaît pas.',
  'tl.e2e.lost': 'Cet appareil ne peut plus suivre les clés de cette conversation.',
  'tl.unreadable.beforeJoin': 'Message illisible : envoyé avant que cet appareil rejoigne la conversation.',
  'tl.unreadable.restoreHint': 'Saisissez votre clé de récupération pour retrouver l’historique.',
  'tl.unreadable.missingKey': 'Message illisible : la clé pour l’ouvrir manque sur cet appareil.',
  'tl.unreadable.forged': 'Message refusé : il ne vient pas de l’appareil que le serveur indique.',
  'tl.unreadable.removed': 'Message illisible : cet appareil ne fait plus partie de la conversation.',
  'tl.unreadable.pending': 'Déchiffrement…',
  'tl.unreadable.invalid': 'Message illisible : format inconnu de cette version.',

  'room.changedDevices': '{name} a un nouvel appareil depuis votre vérification. Vérifiez à nouveau avant d’échanger des informations sensibles.',
  'room.ghostDevice': 'Un appareil de {name} est dans le chiffrement de cette conversation sans que le serveur le déclare ({device}). Ne partagez rien de sensible.',
  'room.inactiveDevice': 'Un appareil déconnecté de {name} est encore dans le chiffrement de cette conversation ({device}) ; il va en être retiré.',
  'composer.confirmUnverified': 'Des appareils non vérifiés liront ce message : {names}. L’envoyer quand même ?',
  'composer.sendAnyway': 'Envoyer quand même',
  'verify.notListed': '{device} · inconnu du serveur',
  'room.verify': 'Vérifier',
  'room.verified': 'Vérifié',
  'room.verifyOf': 'Vérifier {name}',

  'verify.title': 'Vérifier {name}',
  'verify.lead': 'Comparez ce numéro de sécurité avec celui que {name} voit sur son appareil, de vive voix ou en scannant le code QR. S’ils sont identiques, le serveur ne s’est pas interposé entre vous.',
  'verify.number': 'Numéro de sécurité',
  'verify.qr': 'Code QR du numéro de sécurité',
  'verify.devices': 'Appareils de {name}',
  'verify.mine': 'Vos appareils',
  'verify.device': '{device} · depuis le {when}',
  'verify.mark': 'Marquer comme vérifié',
  'verify.unmark': 'Retirer la vérification',
  'verify.done': '{name} est vérifié sur cet appareil.',
  'verify.changed': 'Les appareils de {name} ont changé depuis votre vérification.',

  'recovery.title': 'Votre clé de récupération',
  'recovery.lead': 'Notez cette clé et gardez-la en lieu sûr, hors de cet appareil. Elle seule permet de relire l’historique de vos conversations chiffrées sur un nouvel appareil. Le serveur ne la connaît pas : perdue, elle ne peut pas être retrouvée.',
  'recovery.done': 'J’ai noté la clé',
  'recovery.writeDown': 'Notez votre clé de récupération : sans elle, un nouvel appareil ne pourra pas relire vos conversations chiffrées.',
  'recovery.needed': 'Historique chiffré disponible : saisissez votre clé de récupération.',
  'recovery.enterTitle': 'Restaurer l’historique',
  'recovery.enterLead': 'Saisissez la clé de récupération notée lors de votre première connexion (32 caractères ; tirets et majuscules facultatifs).',
  'recovery.key': 'Clé de récupération',
  'recovery.restore': 'Restaurer',
  'recovery.restored': { zero: 'Clé acceptée. Aucun message à restaurer.', one: 'Clé acceptée : {count} message restauré.', other: 'Clé acceptée : {count} messages restaurés.' },
  'recovery.bad': 'Cette clé ne correspond pas à vos sauvegardes. Vérifiez-la et réessayez.',
  'recovery.none': 'Aucune sauvegarde à restaurer.',

  'profile.e2e': 'Chiffrement de bout en bout',
  'profile.e2eLead': 'Vos conversations privées et vos groupes sont chiffrés sur vos appareils : le serveur ne peut pas les lire.',
  'profile.showKey': 'Afficher la clé de récupération',
  'profile.hideKey': 'Masquer la clé',
  'profile.enterKey': 'Saisir la clé de récupération',
  'profile.keyWarning': 'Quiconque voit cette clé peut relire votre historique chiffré.',

  'notif.mention': '{name} vous a mentionné',
  'notif.dm': 'Message de {name}',
};

type Key = keyof typeof fr;

const en: Record<Key, Entry> = {
  'lang.name': 'English',
  'lang.switch': 'Français',
  'lang.label': 'Language',

  'common.cancel': 'Cancel',
  'common.close': 'Close',
  'common.save': 'Save',
  'common.back': 'Back',
  'common.loading': 'Loading…',
  'common.retry': 'Retry',
  'common.delete': 'Delete',
  'common.confirm': 'Confirm',
  'common.external': 'External',
  'common.externalLong': 'External correspondent',
  'common.you': 'You',
  'common.search': 'Search',
  'common.continue': 'Continue',

  'auth.email': 'Work e-mail address',
  'auth.password': 'Password',
  'auth.newPassword': 'New password',
  'auth.displayName': 'Display name (optional)',
  'auth.displayNameHint': 'By default your name is taken from your address (first.last@…).',
  'auth.passwordHint': 'At least 10 characters; an easy-to-remember sentence works well.',
  'auth.signIn': 'Sign in',
  'auth.signInTitle': 'Sign in',
  'auth.signInLead': 'The secure messenger of public servants.',
  'auth.register': 'Create an account',
  'auth.registerTitle': 'Create your account',
  'auth.registerLead': 'Open to the addresses of the administrations this server serves: {domains}.',
  'auth.noAccount': 'No account yet?',
  'auth.haveAccount': 'Already have an account?',
  'auth.forgot': 'Forgot your password?',
  'auth.pendingTitle': 'Request received',
  'auth.pendingBody': 'An administrator must approve your account. You can then sign in with your address and password.',
  'auth.verifyTitle': 'Check your address',
  'auth.verifyBody': 'We sent a link and a 10-digit code to {email}. Open the link, or type the code here.',
  'auth.code': '10-digit code',
  'auth.verifyPasswordLead': 'To confirm your address, type the password you chose when registering.',
  'auth.verifyPasswordHint': 'If you do not recognise this password, someone else asked for this account in your name: register again, and their registration is erased.',
  'people.tagHint': 'Mark telling apart two people with the same name',
  'auth.verify': 'Verify',
  'auth.verified': 'Address verified. You can sign in.',
  'auth.resetTitle': 'Reset your password',
  'auth.resetRequest': 'Send a link',
  'auth.resetSent': 'If an account exists for this address, a reset link has just been sent.',
  'auth.resetNoMail': 'This service sends no e-mail: to reset your password, ask an administrator of your organisation.',
  'auth.resetDone': 'Password changed. Sign in with the new one.',
  'auth.renewTitle': 'Renew your account',
  'auth.renewed': 'Your account is renewed. You can sign in.',
  'auth.inviteTitle': 'Invitation',
  'auth.inviteBody': '{by} invites you to join “{room}” on the administration’s messenger. Choose a password to activate your access.',
  'auth.inviteAccept': 'Accept the invitation',
  'auth.signedOut': 'You are signed out.',

  'setup.title': 'First-run setup',
  'setup.lead': 'Create the first administrator account and list the domains whose addresses may register.',
  'setup.domains': 'Allowed domains (comma-separated)',
  'setup.fingerprint': 'Fingerprint of the local certificate authority (SHA-256): compare it with the one the server printed before installing the certificate.',
  'setup.submit': 'Create the administrator',
  'setup.done': 'The administrator account is created. Sign in.',
  'setup.notNeeded': 'This node is already set up.',

  'err.email_domain_not_allowed': 'This address does not belong to an administration served by this server. Registration is open to {domains} addresses only. External correspondents join a conversation by invitation.',
  'err.email_invalid': 'This e-mail address is not valid.',
  'err.weak_password': 'Password too weak.',
  'err.password_too_short': 'Password too short: at least 10 characters.',
  'err.password_too_long': 'Password too long.',
  'err.password_invalid': 'This password contains characters that are not accepted.',
  'err.password_too_common': 'This password is too common: choose another one.',
  'err.password_contains_personal_info': 'The password must not contain your name or your administration.',
  'err.password_repeated_character': 'The password must not repeat the same character.',
  'err.bad_credentials': 'Wrong address or password.',
  'err.account_inactive': 'This account is not active yet: address to verify, administrator approval pending, or account deactivated.',
  'err.account_expired': 'Your account has expired: we e-mailed you a renewal link.',
  'err.invalid_token': 'This link or code is not valid or has expired.',
  'err.setup_done': 'This node already has an administrator.',
  'err.rate_limited': 'Too many attempts. Try again in a moment.',
  'err.forbidden': 'Not allowed.',
  'err.not_found': 'Not found.',
  'err.conflict': 'Already done, or in conflict with the current state.',
  'err.external_not_allowed': 'External correspondents cannot do this here.',
  'err.last_owner': 'You are the last owner: make someone else owner first.',
  'err.too_many_invitations': 'Too many of your invitations are waiting for an answer: withdraw some or wait until they are accepted.',
  'err.not_member': 'Not (or no longer) a member of this conversation.',
  'err.unavailable': 'Service temporarily unavailable.',
  'err.home_unreachable': 'The administration that hosts this conversation does not answer: the message goes as soon as it is back.',
  'err.network': 'Cannot reach the server. Check your network.',
  'err.generic': 'Something went wrong.',
  'err.gone': 'This message was deleted.',
  'err.too_large': 'Too long.',

  'conn.offline': 'Offline — messages will be sent when the connection is back.',
  'conn.connecting': 'Connecting…',

  'rooms.title': 'Chats',
  'rooms.search': 'Search chats',
  'rooms.searchShortcut': 'Search chats (Ctrl+K)',
  'rooms.empty': 'No conversations yet. Start by writing to a colleague.',
  'rooms.noMatch': 'No conversation matches.',
  'rooms.invitations': 'Invitations',
  'rooms.invitedBy': 'Invited by {name}',
  'rooms.newDM': 'New message',
  'rooms.newGroup': 'New group',
  'rooms.forums': 'Forums',
  'rooms.unread': { one: '{count} unread message', other: '{count} unread messages' },
  'rooms.mentions': { one: '{count} mention', other: '{count} mentions' },
  'rooms.direct': 'Direct conversation',
  'rooms.group': 'Group',
  'rooms.forum': 'Forum',
  'rooms.encryptedPreview': 'Encrypted message',
  'rooms.deletedPreview': 'Deleted message',
  'rooms.filePreview': 'File',
  'rooms.previewBy': '{name}: {text}',
  'rooms.select': 'Pick a conversation, or start one.',
  'rooms.list': 'Conversations',

  'room.members': { one: '{count} member', other: '{count} members' },
  'room.info': 'Conversation details',
  'room.back': 'Back to conversations',
  'room.externals': 'Open to externals',
  'room.encrypted': 'End-to-end encrypted',
  'room.scannedFiles': 'Files seen by the antivirus',
  'room.scannedFilesHint': 'This server requires its antivirus to receive the key of each file sent here: it can read the files while checking them. Messages stay end-to-end encrypted.',
  'room.invitation': '{name} invites you to join this conversation.',
  'room.accept': 'Join',
  'room.decline': 'Decline',
  'room.loadingHistory': 'Loading history…',
  'room.start': 'Start of the conversation',
  'room.jumpBottom': 'Jump to latest messages',
  'room.online': 'Online',
  'room.leave': 'Leave the conversation',
  'room.leaveConfirm': 'Leave “{name}”?',
  'room.invite': 'Invite people',
  'room.inviteExternal': 'Invite an external by e-mail',
  'room.inviteExternalHint': 'E-mail address of the external correspondent',
  'room.inviteExternalDone': 'Invitation sent to {email}.',
  'room.inviteExternalApproval': 'Invitation recorded, but no e-mail went out: this service sends no e-mail. An administrator must pass the invitation link on to {email}.',
  'room.inviteExternalPending': '{email} already has an invitation waiting: this conversation is added to it, with no new e-mail.',
  'room.inviteExternalPeer': '{email} is an agent of a federated administration: invited as an agent, with no e-mail.',
  'room.invited': 'Invitation sent.',
  'room.role.owner': 'Owner',
  'room.role.moderator': 'Moderator',
  'room.role.member': 'Member',
  'room.state.invited': 'invited',
  'room.remove': 'Remove',
  'room.roleOf': 'Role of {name}',
  'room.membersTitle': 'Members',
  'room.settings': 'Settings',
  'room.name': 'Name',
  'room.topic': 'Topic',
  'room.allowExternals': 'Accept external correspondents',

  'tl.today': 'Today',
  'tl.yesterday': 'Yesterday',
  'tl.edited': '(edited)',
  'tl.deleted': 'Deleted message',
  'tl.removedByServer': 'removed from the server',
  'tl.removedByServerHint': 'The server removed this encrypted message; its author did not delete it. Those who had already decrypted it can still read it.',
  'tl.file': 'File: {name}',
  'tl.replyTo': 'Replying to {name}',
  'tl.replyUnknown': 'Replying to an older message',
  'tl.pending': 'Waiting to be sent',
  'tl.waitingConnection': 'Waiting for the connection',
  'tl.sent': 'Sent',
  'tl.read': 'Read',
  'tl.failed': 'Not sent',
  'tl.readBy': 'Read by {names}',
  'tl.reply': 'Reply',
  'tl.edit': 'Edit',
  'tl.react': 'React',
  'tl.reactWith': 'React with {key}',
  'tl.reactions': '{key}: {names}',
  'tl.deleteConfirm': 'Delete this message for everyone?',
  'tl.actions': 'Message actions',
  'tl.created': '{name} created the conversation',
  'tl.member.invite': '{name} invited {target}',
  'tl.member.join': '{target} joined',
  'tl.member.leave': '{target} left',
  'tl.member.kick': '{name} removed {target}',
  'tl.member.ban': '{name} banned {target}',
  'tl.member.unban': '{name} lifted the ban on {target}',
  'tl.member.role': '{name} made {target} {role}',
  'tl.settings.name': '{name} renamed the conversation to “{value}”',
  'tl.settings.topic': '{name} changed the topic',
  'tl.settings.externals': '{name} changed whether externals are accepted',
  'tl.typing1': '{a} is typing…',
  'tl.typing2': '{a} and {b} are typing…',
  'tl.typingMany': 'Several people are typing…',
  'tl.messages': 'Messages',

  'composer.placeholder': 'Write a message',
  'composer.label': 'Message to {room}',
  'composer.send': 'Send',
  'composer.attach': 'Attach a file',
  'composer.camera': 'Take a photo',
  'room.dropHere': 'Drop files here to send them',
  'file.unit.b': '{n} B',
  'file.unit.kb': '{n} KB',
  'file.unit.mb': '{n} MB',
  'file.unit.gb': '{n} GB',
  'file.preparing': 'Encrypting… {percent}%',
  'file.uploading': 'Uploading… {percent}%',
  'file.finishing': 'Being checked by the server…',
  'file.posting': 'Posting…',
  'file.cancel': 'Cancel sending {name}',
  'file.failed': 'Could not send: {reason}',
  'file.dismiss': 'Dismiss',
  'file.download': 'Download',
  'file.view': 'View {name} full screen',
  'viewer.close': 'Close',
  'file.downloadLabel': 'Download {name}',
  'file.downloading': 'Downloading… {percent}%',
  'file.downloadFailed': 'Could not download: {reason}',
  'file.open': 'Open the picture {name}',
  'file.pending': 'Being checked by the antivirus…',
  'file.clean': 'Checked by the antivirus',
  'file.policyChecked': 'Checked by the server (no antivirus)',
  'file.unscanned': 'End-to-end encrypted: not checked by the server',
  'file.quarantined': '“{name}” removed by the antivirus: {reason}',
  'file.quarantinedShort': 'removed by the antivirus: {reason}',
  'file.code.infected': 'infected',
  'file.code.blocked_type': 'forbidden file type',
  'file.code.archive_bomb': 'archive that expands too much',
  'file.code.archive_nested': 'archives nested too deep',
  'file.code.archive_encrypted': 'password-protected archive',
  'file.code.archive_invalid': 'damaged archive',
  'file.code.image_too_large': 'picture too large',
  'file.code.image_invalid': 'unreadable picture',
  'file.code.undecryptable': 'encrypted file that cannot be opened',
  'file.code.scanner_unavailable': 'antivirus unavailable',
  'file.code.too_large': 'file too large',
  'file.code.mismatch': 'not the file announced',
  'file.code.other': 'file refused',
  'file.err.too_large': 'file too large for this server',
  'file.err.quota_exceeded': 'your storage space is full',
  'file.err.too_many_uploads': 'too many unfinished uploads',
  'file.err.blocked_type': 'forbidden file type (programs, scripts, installers…)',
  'file.err.not_encrypted': 'unencrypted file refused in an encrypted conversation',
  'file.err.network': 'connection to the server lost',
  'file.err.scan_pending': 'the file is still being checked by the antivirus',
  'file.err.forbidden': 'not allowed',
  'file.err.not_found': 'file not found or deleted',
  'file.err.not_in_group': 'this device does not have the conversation’s keys yet',
  'file.err.generic': 'something went wrong',
  'composer.replyingTo': 'Replying to {name}',
  'composer.editing': 'Editing message',
  'composer.cancelReply': 'Cancel reply',
  'composer.cancelEdit': 'Cancel edit',
  'composer.hint': 'Enter to send, Shift+Enter for a new line',
  'composer.mentionList': 'People to mention',

  'dm.title': 'New message',
  'dm.search': 'Name of an agent',
  'dm.hint': 'Type the start of a first or last name.',
  'dm.none': 'Nobody matches.',
  'dm.results': 'Directory results',
  'dir.admin': 'Administration: {name}',
  'dir.partial': 'Some administrations did not answer in time: the list may be incomplete.',

  'group.title': 'New group',
  'group.name': 'Group name',
  'group.topic': 'Topic (optional)',
  'group.externals': 'Accept external correspondents (invited by e-mail)',
  'group.forum': 'Forum open to all agents (not encrypted, listed in the forum directory)',
  'group.people': 'Add people',
  'group.create': 'Create',
  'group.selected': 'Invited people',

  'forums.title': 'Forums',
  'forums.search': 'Search forums',
  'forums.join': 'Join',
  'forums.open': 'Open',
  'forums.none': 'No forum matches.',
  'forums.members': { one: '{count} member', other: '{count} members' },

  'profile.title': 'Profile and devices',
  'profile.open': 'Profile, settings and devices',
  'profile.name': 'Display name',
  'profile.email': 'E-mail address (visible to you only)',
  'profile.org': 'Administration',
  'profile.saved': 'Saved.',
  'profile.devices': 'Signed-in devices',
  'profile.thisDevice': 'This device',
  'profile.lastSeen': 'Seen {when}',
  'profile.revoke': 'Sign out',
  'profile.revokeConfirm': 'Sign this device out?',
  'profile.signOut': 'Sign out',
  'profile.notifications': 'Notifications',
  'profile.notifEnable': 'Turn on notifications',
  'profile.notifOn': 'Notifications are on for direct messages and mentions while the tab is in the background.',
  'profile.notifDenied': 'Notifications are blocked by the browser. To allow them: click the padlock (or settings icon) left of the address, open “Notifications”, choose “Allow”, then reload the page. On a phone: browser Settings › Site settings › Notifications.',
  'profile.notifUnsupported': 'This browser does not support notifications.',
  'profile.appearance': 'The light or dark theme follows your system setting.',

  'tl.e2e.add': '{name} added {target} to the encryption',
  'tl.e2e.remove': '{name} removed {target} from the encryption',
  'tl.e2e.removedMe': '{name} removed you from the encryption: this device no longer reads this conversation',
  'tl.e2e.device': '{name} added the device “{device}”',
  'tl.e2e.deviceRemove': '{name}’s device “{device}” was removed from the encryption',
  'tl.e2e.welcome': 'This device received the conversation’s keys',
  'tl.e2e.founded': '{name} turned on end-to-end encryption',
  'tl.e2e.unverified': '— unverified device: compare the safety number again.',
  'tl.e2e.refused': 'Encryption change refused and ignored: it does not come from a member of the conversation, or adds a device the server does not know.',
  'tl.e2e.lost': 'This device can no longer follow this conversation’s keys.',
  'tl.unreadable.beforeJoin': 'Unreadable message: sent before this device joined the conversation.',
  'tl.unreadable.restoreHint': 'Enter your recovery key to get the history back.',
  'tl.unreadable.missingKey': 'Unreadable message: the key to open it is missing on this device.',
  'tl.unreadable.forged': 'Message refused: it does not come from the device the server says.',
  'tl.unreadable.removed': 'Unreadable message: this device is no longer part of the conversation.',
  'tl.unreadable.pending': 'Decrypting…',
  'tl.unreadable.invalid': 'Unreadable message: a format this version does not know.',

  'room.changedDevices': '{name} has a new device since you verified them. Verify again before sharing sensitive information.',
  'room.ghostDevice': 'A device of {name} is in this conversation’s encryption although the server does not declare it ({device}). Do not share anything sensitive.',
  'room.inactiveDevice': 'A signed-out device of {name} is still in this conversation’s encryption ({device}); it is being removed.',
  'composer.confirmUnverified': 'Unverified devices will read this message: {names}. Send it anyway?',
  'composer.sendAnyway': 'Send anyway',
  'verify.notListed': '{device} · unknown to the server',
  'room.verify': 'Verify',
  'room.verified': 'Verified',
  'room.verifyOf': 'Verify {name}',

  'verify.title': 'Verify {name}',
  'verify.lead': 'Compare this safety number with the one {name} sees on their device, aloud or by scanning the QR code. If they match, the server did not come between you.',
  'verify.number': 'Safety number',
  'verify.qr': 'QR code of the safety number',
  'verify.devices': '{name}’s devices',
  'verify.mine': 'Your devices',
  'verify.device': '{device} · since {when}',
  'verify.mark': 'Mark as verified',
  'verify.unmark': 'Remove verification',
  'verify.done': '{name} is verified on this device.',
  'verify.changed': '{name}’s devices changed since you verified them.',

  'recovery.title': 'Your recovery key',
  'recovery.lead': 'Write this key down and keep it somewhere safe, away from this device. It alone lets you read the history of your encrypted conversations on a new device. The server does not know it: lost, it cannot be recovered.',
  'recovery.done': 'I wrote the key down',
  'recovery.writeDown': 'Write down your recovery key: without it, a new device cannot read your encrypted conversations.',
  'recovery.needed': 'Encrypted history available: enter your recovery key.',
  'recovery.enterTitle': 'Restore history',
  'recovery.enterLead': 'Enter the recovery key you wrote down when you first signed in (32 characters; dashes and capitals optional).',
  'recovery.key': 'Recovery key',
  'recovery.restore': 'Restore',
  'recovery.restored': { zero: 'Key accepted. No messages to restore.', one: 'Key accepted: {count} message restored.', other: 'Key accepted: {count} messages restored.' },
  'recovery.bad': 'This key does not match your backups. Check it and try again.',
  'recovery.none': 'No backup to restore.',

  'profile.e2e': 'End-to-end encryption',
  'profile.e2eLead': 'Your private conversations and groups are encrypted on your devices: the server cannot read them.',
  'profile.showKey': 'Show the recovery key',
  'profile.hideKey': 'Hide the key',
  'profile.enterKey': 'Enter the recovery key',
  'profile.keyWarning': 'Anyone who sees this key can read your encrypted history.',

  'notif.mention': '{name} mentioned you',
  'notif.dm': 'Message from {name}',
};

export type MessageKey = Key;
export type Params = Record<string, string | number>;

const catalogue: Record<Lang, Record<Key, Entry>> = { fr, en };

let current: Lang = 'fr';
const listeners = new Set<() => void>();

/** pickLang chooses the language from the browser's preferences. */
export function pickLang(prefs: readonly string[]): Lang {
  for (const p of prefs) {
    const base = p.toLowerCase().split('-')[0];
    if (base === 'fr' || base === 'en') return base;
  }
  return 'fr';
}

export function lang(): Lang {
  return current;
}

export function setLang(l: Lang): void {
  if (l === current) return;
  current = l;
  if (typeof document !== 'undefined') document.documentElement.lang = l;
  for (const f of listeners) f();
}

export function onLangChange(f: () => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

const pluralRules: Partial<Record<Lang, Intl.PluralRules>> = {};

// French elides "de", "que" and their compounds before a vowel: "d’Alice",
// "qu’Émile". Names come in as parameters, so the template cannot know;
// before an h the rule depends on the word, and the full form stays.
const elidable = /(^|[\s(«])(de|que|jusque|lorsque|puisque|De|Que) $/;
const vowel = /^[aeiouyàâäéèêëîïôöûüœæ]/i;

function interpolate(s: string, params?: Params, l?: Lang): string {
  if (!params) return s;
  let out = '';
  let last = 0;
  for (const m of s.matchAll(/\{(\w+)\}/g)) {
    const k = m[1];
    let before = s.slice(last, m.index);
    const v = k in params ? String(params[k]) : m[0];
    if (l === 'fr' && k in params && vowel.test(v)) {
      before = before.replace(elidable, (_, sep: string, w: string) => sep + w.slice(0, -1) + '’');
    }
    out += before + v;
    last = (m.index ?? 0) + m[0].length;
  }
  return out + s.slice(last);
}

/** format returns the message of key in language l. */
export function format(l: Lang, key: MessageKey, params?: Params): string {
  const entry = catalogue[l][key] ?? catalogue.fr[key] ?? key;
  if (typeof entry === 'string') return interpolate(entry, params, l);
  const n = Number(params?.count ?? 0);
  const rules = (pluralRules[l] ??= new Intl.PluralRules(l));
  const form = n === 0 && entry.zero !== undefined ? 'zero' : rules.select(n);
  const s = (entry as Record<string, string | undefined>)[form] ?? entry.other;
  return interpolate(s, { ...params, count: new Intl.NumberFormat(l).format(n) }, l);
}

/** t returns the message of key in the current language. */
export function t(key: MessageKey, params?: Params): string {
  return format(current, key, params);
}

/** has reports whether key is in the catalogue (for error codes). */
export function has(key: string): key is MessageKey {
  return key in fr;
}

/** formatSize writes a number of bytes (ko, Mo… in French). */
export function formatSize(n: number, l: Lang = current): string {
  const units = ['file.unit.b', 'file.unit.kb', 'file.unit.mb', 'file.unit.gb'] as const;
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = i === 0 || v >= 100 ? 0 : 1;
  return format(l, units[i], { n: new Intl.NumberFormat(l, { maximumFractionDigits: digits }).format(v) });
}

/** keys lists the catalogue's keys (tests check both languages match). */
export function keysOf(l: Lang): string[] {
  return Object.keys(catalogue[l]);
}

// Dates and times, localized with Intl.

const fmtCache = new Map<string, Intl.DateTimeFormat>();
function dtf(l: Lang, opts: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const k = l + JSON.stringify(opts);
  let f = fmtCache.get(k);
  if (!f) fmtCache.set(k, (f = new Intl.DateTimeFormat(l === 'fr' ? 'fr-FR' : 'en-GB', opts)));
  return f;
}

export function startOfDay(ts: number): number {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function formatTime(ts: number, l: Lang = current): string {
  return dtf(l, { hour: '2-digit', minute: '2-digit' }).format(ts);
}

/** formatDay labels a day separator: today, yesterday, or the date. */
export function formatDay(ts: number, now: number = Date.now(), l: Lang = current): string {
  const days = Math.round((startOfDay(now) - startOfDay(ts)) / 86400000);
  if (days === 0) return format(l, 'tl.today');
  if (days === 1) return format(l, 'tl.yesterday');
  const opts: Intl.DateTimeFormatOptions = { weekday: 'long', day: 'numeric', month: 'long' };
  if (new Date(ts).getFullYear() !== new Date(now).getFullYear()) opts.year = 'numeric';
  const s = dtf(l, opts).format(ts);
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** formatShort is the time shown in the room list: the time today, the
 * weekday this week, the date otherwise. */
export function formatShort(ts: number, now: number = Date.now(), l: Lang = current): string {
  const days = Math.round((startOfDay(now) - startOfDay(ts)) / 86400000);
  if (days === 0) return formatTime(ts, l);
  if (days === 1) return format(l, 'tl.yesterday');
  if (days < 7) return dtf(l, { weekday: 'short' }).format(ts);
  return dtf(l, { day: 'numeric', month: 'short' }).format(ts);
}

export function formatDateTime(ts: number, l: Lang = current): string {
  return dtf(l, { dateStyle: 'medium', timeStyle: 'short' }).format(ts);
}
