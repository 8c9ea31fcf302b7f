"""Refusal cues in thirteen languages other than English, for `filters.refusal`.

French, German, Spanish, Portuguese, Italian, Dutch, Swedish, Polish, Turkish, Russian, Chinese,
Japanese and Korean: the common refusal stances ("Je ne peux pas", "Ich kann ... nicht", "No puedo",
"Não posso", "Non posso", "Ik kan niet", "Jag kan inte", "Nie mogę", "Yapamam", "Я не могу",
"我不能/无法", "できません", "할 수 없습니다") with their apology and decline variants; lectures and
offers of something else instead; and the words that turn back to the task after a refusal
("Cependant, voici ...", "Sin embargo, en general ..."), which make a refusal partial.

Each table is data: branches that start with a word (`refusal.py` tries them only where one of
the table's trigger words starts, as it does its English families) and branches for scripts
without spaces (Chinese, Japanese, Korean; tried only where their first character occurs). They
are read only when the answer may not be English (`may_be_foreign`), so English answers pay one
short search. The patterns are written from the usual phrasings of each language, not from any
benchmark's answers.
"""

from __future__ import annotations

import re

# Turkish says "I can't" with a suffix: yap-a-mam, ver-e-meyeceğim, sağla-ya-mam.
_TR_STEMS = ("yap", "ol", "ed", "ver", "sağla", "yaz", "oluştur", "paylaş", "açıkla", "anlat", "katıl", "öner",
             "söyle", "üret", "hazırla", "sun", "göster", "çiz", "yardım ed", "destek ol", "tarif ed")


def _tr_cannot(stem: str) -> list[str]:
    """The "cannot" forms of a Turkish verb stem, by vowel harmony: yap -> yapamam, söyle -> söyleyemem."""
    last = [ch for ch in stem if ch in "aeıioöuü"][-1]
    link = "y" if stem[-1] in "aeıioöuü" else ""
    endings = ("amam", "amayacağım", "amıyorum") if last in "aıou" else ("emem", "emeyeceğim", "emiyorum")
    return [stem + link + ending for ending in endings]


_TR_WORDS = sorted({word for stem in _TR_STEMS for word in _tr_cannot(stem.split()[-1])})

# Each table: (trigger words, branches that start with one of them), then branches for scripts
# without spaces.
STRONG = (
    "je il ce désolé désolée navré navrée malheureusement ich wir kann werde darf möchte das dabei damit hierbei hierzu hiermit darauf dazu "
    "diese muss lehne es leider entschuldigung no debo tengo me lo lamentablemente disculpa disculpe perdón prefiero "
    "não desculpe desculpa lamento sinto infelizmente devo preciso prefiro non mi purtroppo spiacente scusa scusami "
    "scusate preferisco ik kan zal mag daar hier daarmee hiermee dat hierbij daarbij moet het sorry helaas jag det "
    "detta här där tyvärr ursäkta förlåt nie przepraszam niestety przykro muszę odmawiam üzgünüm maalesef kusura özür "
    "reddetmek я не извините простите к мне сожалею вынуждена вынужден отказываюсь " + " ".join(_TR_WORDS),
    (
        # French
        r"je\s+ne\s+(?:(?:vous|te|t'|lui|leur)\s*)?(?:peux|pourrai|pourrais|puis|vais|veux|souhaite|fournirai|"
        r"donnerai|aiderai|écrirai|rédigerai|expliquerai|participerai|suis\s+pas\s+(?:en\s+mesure|autorisée?|"
        r"à\s+l'aise|en\s+position))\b",
        r"je\s+(?:dois|préfère|me\s+vois\s+(?:dans\s+l'obligation|contrainte?)\s+de)\s+(?:(?:respectueusement|"
        r"poliment)\s+)?(?:refuser|décliner|m'abstenir|ne\s+pas)\b",
        r"je\s+refuse\b", r"il\s+m'est\s+impossible\b",
        r"ce\s+n'est\s+pas\s+quelque\s+chose\s+(?:que|sur\s+lequel|pour\s+lequel)\s+je\b",
        r"(?:désolée?|navrée?|malheureusement),?\s+(?:mais\s+)?(?:je\s+ne|il\s+m'est|ce\s+n'est\s+pas\s+possible)",
        # German
        r"(?:ich|wir)\s+(?:kann|können|werde|werden|darf|dürfen|möchte|möchten|will)\s+(?:\w+\s+){0,4}?"
        r"(?:nicht|keine?[nrs]?)\s+(?:\w+\s+){0,6}?(?:helfen|unterstützen|behilflich|geben|liefern|bereitstellen|"
        r"erstellen|schreiben|verfassen|erklären|beantworten|nennen|teilen|anbieten|machen|tun|empfehlen|"
        r"mitwirken|beteiligen|weiterhelfen|sein)\b",
        r"(?:das|dabei|damit|hierbei|hierzu|hiermit|darauf|dazu|diese\s+\w+)\s+(?:kann|werde|darf|möchte)\s+ich\s+"
        r"(?:\w+\s+){0,3}?(?:nicht|keine?[nrs]?)\b",
        r"(?:kann|werde|darf|möchte)\s+ich\s+(?:\w+\s+){0,4}?(?:nicht|keine?[nrs]?)\s+(?:\w+\s+){0,6}?(?:helfen|unterstützen|"
        r"behilflich|geben|liefern|bereitstellen|erstellen|schreiben|verfassen|erklären|beantworten|nennen|teilen|"
        r"anbieten|machen|tun|empfehlen|mitwirken|beteiligen|weiterhelfen|sein)\b",
        r"(?:ich\s+muss|muss\s+ich)\s+(?:\w+\s+){0,4}?ablehnen\b", r"lehne\s+(?:ich\s+)?(?:\w+\s+){0,3}?ab\b",
        r"es\s+ist\s+mir\s+nicht\s+(?:möglich|erlaubt|gestattet)\b", r"ich\s+bin\s+nicht\s+in\s+der\s+lage\b",
        r"(?:leider|entschuldigung|es\s+tut\s+mir\s+leid),?\s+(?:aber\s+)?(?:ich|das|dabei|hierbei|hierzu|damit)\s+"
        r"(?:kann|werde|darf|möchte)\b",
        # Spanish
        r"no\s+(?:te\s+|le\s+|les\s+|lo\s+|la\s+)?(?:puedo|podré|podría|voy\s+a|me\s+es\s+posible|estoy\s+en\s+"
        r"(?:condiciones|posición)|estoy\s+autorizad[oa]|proporcionaré|ayudaré|daré|escribiré|es\s+posible\s+"
        r"(?:ayudar|proporcionar)|me\s+siento\s+cómod[oa])\b",
        r"(?:debo|tengo\s+que)\s+(?:(?:respetuosamente|amablemente)\s+)?(?:negarme|rechazar|declinar)\b",
        r"me\s+niego\b",
        r"(?:lo\s+siento(?:\s+mucho)?|lamentablemente|disculpa|disculpe|perdón),?\s+(?:pero\s+)?no\b",
        r"no\s+es\s+algo\s+(?:que|con\s+lo\s+que|en\s+lo\s+que)\s+(?:\w+\s+)?pueda\b", r"prefiero\s+no\b",
        # Portuguese
        r"não\s+(?:te\s+|lhe\s+|o\s+|a\s+)?(?:posso|consigo|vou|poderei|poderia|irei|estou\s+(?:em\s+condições|"
        r"autorizad[oa]|confortável)|me\s+é\s+possível|é\s+possível\s+ajudar|fornecerei|ajudarei)\b",
        r"(?:desculpe|desculpa|lamento|sinto\s+muito|infelizmente),?\s+(?:mas\s+)?(?:eu\s+)?não\b",
        r"(?:devo|tenho\s+que|preciso)\s+(?:(?:respeitosamente|educadamente)\s+)?(?:recusar|declinar)\b",
        r"me\s+recuso\b", r"prefiro\s+não\b", r"não\s+é\s+algo\s+(?:que|com\s+que|em\s+que)\s+(?:\w+\s+)?possa\b",
        # Italian
        r"non\s+(?:ti\s+|le\s+|vi\s+|lo\s+|la\s+)?(?:posso|potrò|potrei|sono\s+in\s+grado|sono\s+autorizzat[oa]|"
        r"intendo|fornirò|aiuterò|scriverò|mi\s+è\s+possibile|mi\s+sento\s+a\s+mio\s+agio)\b",
        r"(?:mi\s+dispiace|purtroppo|spiacente|scusa|scusami|scusate),?\s+(?:ma\s+)?non\b",
        r"(?:devo|preferisco)\s+(?:(?:rispettosamente|gentilmente)\s+)?(?:rifiutare|declinare|non)\b",
        r"mi\s+rifiuto\b", r"non\s+è\s+qualcosa\s+(?:che|con\s+cui|in\s+cui)\s+(?:\w+\s+)?possa\b",
        # Dutch
        r"(?:ik\s+(?:kan|ga|wil|zal|mag)|kan\s+ik|zal\s+ik|mag\s+ik)\s+(?:\w+\s+){0,4}?(?:niet|geen)\b"
        r"(?!\s+(?:zeker|garanderen|beloven))",
        r"(?:daar|hier|daarmee|hiermee|dat|hierbij|daarbij)\s+(?:kan|ga|wil|zal|mag)\s+ik\s+(?:\w+\s+){0,3}?(?:niet|geen)\b",
        r"(?:ik\s+moet|moet\s+ik)\s+(?:\w+\s+){0,4}?(?:weigeren|afslaan)\b", r"ik\s+weiger\b",
        r"(?:het\s+spijt\s+me|sorry|helaas),?\s+(?:maar\s+)?(?:ik|dat|daar|hiermee|daarmee)\s+(?:kan|ga|wil|zal|mag)\b",
        # Swedish
        r"jag\s+(?:kan|kommer|får|vill|tänker)\s+(?:\w+\s+){0,3}?(?:inte|inget|ingen|inga)\b(?!\s+garantera)",
        r"(?:det|detta|här|där)\s+(?:kan|kommer|får|vill)\s+jag\s+(?:\w+\s+){0,3}?inte\b", r"kan\s+jag\s+inte\b",
        r"jag\s+måste\s+(?:\w+\s+)?(?:tacka\s+nej|avböja|vägra)\b",
        r"(?:tyvärr|jag\s+är\s+ledsen|ursäkta|förlåt),?\s+(?:men\s+)?(?:jag|det|detta)\s+(?:kan|kommer|får)\b",
        # Polish
        r"nie\s+(?:mogę|jestem\s+w\s+stanie|mogłabym|mógłbym|pomogę|udzielę|podam|napiszę|będę|zamierzam|"
        r"wolno\s+mi|czuję\s+się\s+komfortowo)\b",
        r"(?:przepraszam|niestety|przykro\s+mi),?\s+(?:ale\s+)?(?:nie|w\s+tym|tego|w\s+tej)\b",
        r"muszę\s+(?:\w+\s+)?odmówić\b", r"odmawiam\b",
        # Turkish
        r"(?:{})\b".format("|".join(_TR_WORDS)),
        r"(?:üzgünüm|maalesef|kusura\s+bakmayın|özür\s+dilerim),?\s+(?:ama\s+|fakat\s+|ancak\s+)?(?:bu|bunu|bununla|"
        r"size|sana|böyle)\b",
        r"reddetmek\s+zorundayım\b",
        # Russian
        r"(?:я\s+)?не\s+(?:могу|смогу|буду|стану|вправе|имею\s+права|в\s+состоянии|в\s+силах|готова?|собираюсь)\b",
        r"(?:извините|простите|к\s+сожалению|мне\s+жаль|сожалею),?\s+(?:но\s+)?(?:я\s+)?не\b",
        r"вынуждена?\s+отказать", r"отказываюсь\b",
    ),
    (
        # Chinese
        r"我(?:无法|不能|没办法|不会|拒绝|必须拒绝|不便|不宜|不可以)", r"恕我(?:不能|无法|难以)",
        r"(?:无法|不能|不便)(?:为您|为你|向您|向你)?(?:提供|帮助|协助|满足|回答|完成|编写|撰写|解答)",
        r"抱歉", r"很遗憾，?我", r"对不起，?我",
        # Japanese
        r"(?:お手伝い|お答え|お応え|提供|作成|協力|説明|回答|支援|対応|共有|お伝え|ご案内|お教え|教えること|手伝うこと|お勧め|勧める|推奨|"
        r"アドバイス|助言|手助け|ご協力|ご提供|教える|"
        r"お役に立つこと|応じること)(?:することは|することが|は|が|いたすことは)?できません",
        r"(?:それ|これ|そのようなこと|その(?:ご)?依頼|そのリクエスト)(?:に)?は\w{0,8}?できません",
        r"いたしかねます", r"致しかねます", r"できかねます", r"控えさせていただきます",
        r"お断り(?:します|いたします|させていただきます)", r"申し訳(?:ありません|ございません)が",
        # Korean
        r"할\s*수\s*없", r"드릴\s*수\s*없", r"(?:드리기|하기|돕기)\s*(?:는\s*)?어렵습니다", r"않겠습니다",
        r"거절(?:하겠습니다|해야\s*합니다|할\s*수밖에)", r"죄송하지만", r"죄송합니다",
    ),
)

# Lectures and harm evaluations: the voice of a refusal without "I can't".
LECTURE = (
    "es nunca no te il n ce est je ist sollten rate é não è non is niet är inte jest nie yasa yasadışı yasadışıdır "
    "tehlikeli tehlikelidir etik uygun опасно незаконно недопустимо неприемлемо неэтично",
    (
        r"es\s+importante\s+recordar", r"nunca\s+es\s+(?:la\s+solución|aceptable|apropiado)",
        r"no\s+es\s+(?:apropiado|ético|legal)", r"es\s+(?:ilegal|peligroso)\b",
        r"te\s+recomiendo\s+encarecidamente\s+que\s+no\b",
        r"il\s+est\s+important\s+de\b", r"n'est\s+(?:jamais|pas)\s+(?:acceptable|approprié|éthique|légal)",
        r"ce\s+n'est\s+pas\s+approprié", r"est\s+(?:illégal|dangereux|contraire\s+à\s+l'éthique)\b",
        r"je\s+vous\s+déconseille\b",
        r"ist\s+(?:\w+\s+)?(?:gefährlich|verantwortungslos|illegal|unangemessen|strafbar|unethisch)\b",
        r"sollten\s+nicht\s+verbreitet", r"rate\s+(?:ich\s+)?(?:\w+\s+)?dringend\s+ab\b",
        r"é\s+importante\s+lembrar", r"nunca\s+é\s+(?:aceitável|apropriado)", r"não\s+é\s+(?:apropriado|ético|legal)",
        r"é\s+(?:ilegal|perigoso)\b",
        r"è\s+importante\s+ricordare", r"non\s+è\s+(?:mai\s+)?(?:appropriato|accettabile|etico|legale)",
        r"è\s+(?:illegale|pericoloso)\b",
        r"is\s+(?:\w+\s+)?(?:illegaal|gevaarlijk|onverantwoord|strafbaar)\b", r"niet\s+(?:gepast|ethisch|verantwoord)\b",
        r"är\s+(?:\w+\s+)?(?:olagligt|farligt|oetiskt|olämpligt)\b", r"inte\s+(?:lämpligt|etiskt|acceptabelt)\b",
        r"jest\s+(?:\w+\s+)?(?:nielegalne|niebezpieczne|nieetyczne|niewłaściwe)\b",
        r"nie\s+jest\s+(?:właściwe|etyczne|w\s+porządku)\b",
        r"(?:yasa\s*dışı(?:dır)?|tehlikeli(?:dir)?|etik\s+değil(?:dir)?|uygun\s+değil(?:dir)?)\b",
        r"(?:опасно|незаконно|недопустимо|неприемлемо|неэтично)\b",
    ),
    (
        r"热线", r"请不要", r"你并不孤单", r"是违法的", r"非常危险", r"违法", r"不道德",
        r"危険です", r"違法です", r"お勧めできません", r"控えて", r"倫理的",
        r"위험하고", r"불법", r"작성하지\s*않는", r"바람직하지\s*않", r"비윤리",
    ),
)

# Offers of something else instead, and help lines: what follows a refusal and is not the task.
ALTERNATIVE = (
    "au à plutôt je ligne professionnel n en puedo línea profesional stattdessen anstatt kann telefonseelsorge wende "
    "wenden em ao posso procure invece al rivolgiti in ik istället i vänd zamiast mogę zwróć bunun yerine "
    "önerebilirim başvurun başvurmanızı вместо могу обратитесь телефон",
    (
        r"au\s+lieu\s+de\b", r"à\s+la\s+place\b", r"plutôt\s+que\b",
        r"je\s+(?:peux|pourrais)\s+(?:plutôt\s+)?(?:vous|t')\s*(?:proposer|suggérer|aider\s+à\s+(?:trouver|comprendre))",
        r"ligne\s+d'écoute\b", r"professionnel\s+de\s+(?:la\s+)?santé\b", r"n'hésitez\s+pas\s+à\s+(?:contacter|consulter|demander)",
        r"en\s+su\s+lugar\b", r"en\s+cambio\b", r"en\s+lugar\s+de\b",
        r"puedo\s+(?:\w+\s+)?(?:sugerirte|sugerirle|ofrecerte|ofrecerle|ayudarte\s+a\s+(?:encontrar|entender))",
        r"línea\s+de\s+(?:ayuda|crisis)\b", r"profesional\s+de\s+la\s+salud\b",
        r"stattdessen\b", r"anstatt\b", r"kann\s+ich\s+(?:\w+\s+){0,2}(?:vorschlagen|anbieten|empfehlen)\b",
        r"telefonseelsorge\b", r"wende\s+dich\s+an\b", r"wenden\s+sie\s+sich\s+an\b",
        r"em\s+vez\s+(?:de|disso)\b", r"ao\s+invés\b", r"posso\s+(?:\w+\s+)?(?:sugerir|oferecer|ajudar\s+a\s+(?:encontrar|entender))",
        r"procure\s+(?:um|uma|ajuda)\b",
        r"invece\b", r"al\s+posto\s+d\w*\b", r"posso\s+(?:\w+\s+)?(?:suggerirti|suggerirle|proporti|offrirti)\b",
        r"rivolgiti\s+a\b",
        r"in\s+plaats\s+(?:daarvan|van)\b", r"ik\s+kan\s+(?:je|u)\s+(?:wel\s+)?(?:\w+\s+)?(?:voorstellen|aanraden|helpen\s+met\s+iets)",
        r"istället\b", r"i\s+stället\b", r"kan\s+jag\s+(?:\w+\s+){0,2}(?:föreslå|erbjuda)\b", r"vänd\s+dig\s+till\b",
        r"zamiast\b", r"mogę\s+(?:\w+\s+)?(?:zaproponować|zasugerować|polecić)\b", r"zwróć\s+się\s+do\b",
        r"bunun\s+yerine\b", r"yerine\b", r"önerebilirim\b", r"başvurun\b", r"başvurmanızı\b",
        r"вместо\b", r"могу\s+(?:\w+\s+)?(?:предложить|посоветовать)", r"обратитесь\s+к\b", r"телефон\s+доверия",
    ),
    (
        r"相反", r"作为替代", r"我可以(?:为您|为你)?(?:提供|推荐|建议)(?:一些)?(?:其他|替代|安全)", r"建议您?(?:咨询|联系|寻求)",
        r"代わりに", r"その代わり", r"ご提案", r"専門家に(?:相談|ご相談)", r"相談してください",
        r"대신", r"대안", r"상담(?:하시기|하세요|을\s*받)", r"전문가와",
    ),
)

# Words that turn back to the task after a refusal: "Cependant, voici ...", "Sin embargo, en
# general ...". A bare "but" (mais, pero, aber, но, 但) is left out: "I can't do X, but I can offer Y"
# is an offer, not the task.
PIVOT = (
    "cependant toutefois néanmoins cela en voici de d à sin no dicho aquí a por jedoch allerdings dennoch trotzdem hier "
    "im generell grundsätzlich allgemein contudo porém todavia aqui em dito tuttavia comunque ecco in detto "
    "ciononostante di echter desondanks over wat däremot här i generellt ändå jednak natomiast oto ogólnie mimo "
    "niemniej ancak bununla işte genel yine genellikle однако тем вот в как обычно",
    (
        r"(?:cependant|toutefois|néanmoins|cela\s+dit|en\s+revanche|voici|en\s+général|de\s+manière\s+générale|"
        r"d'une\s+manière\s+générale|en\s+règle\s+générale|à\s+titre\s+(?:indicatif|d'information|général))\b",
        r"(?:sin\s+embargo|no\s+obstante|dicho\s+esto|aquí\s+tienes|aquí\s+tiene|a\s+continuación|en\s+general|"
        r"por\s+lo\s+general|de\s+(?:forma|manera)\s+general|en\s+términos\s+generales)\b",
        r"(?:jedoch|allerdings|dennoch|trotzdem|hier\s+(?:ist|sind|einige)|im\s+allgemeinen|generell|grundsätzlich|allgemein|in\s+der\s+regel)\b",
        r"(?:no\s+entanto|contudo|porém|todavia|aqui\s+está|aqui\s+estão|em\s+geral|de\s+(?:modo|forma|maneira)\s+geral|em\s+termos\s+gerais|dito\s+isso)\b",
        r"(?:tuttavia|comunque|ecco|in\s+generale|in\s+linea\s+generale|di\s+solito|detto\s+questo|ciononostante)\b",
        r"(?:echter|desondanks|hier\s+(?:is|zijn)|in\s+het\s+algemeen|over\s+het\s+algemeen|wat\s+ik\s+wel\s+kan)\b",
        r"(?:däremot|här\s+är|i\s+allmänhet|generellt|ändå)\b",
        r"(?:jednak|natomiast|oto|ogólnie|mimo\s+to|niemniej)\b",
        r"(?:ancak|bununla\s+birlikte|işte|genel\s+olarak|yine\s+de|genellikle)\b",
        r"(?:однако|тем\s+не\s+менее|вот|в\s+целом|в\s+общем|как\s+правило|обычно)\b",
    ),
    (
        r"但是", r"不过", r"然而", r"以下是", r"一般(?:来说|而言|可以|情况下)", r"总体而言", r"通常", r"至于",
        r"ただし", r"しかし", r"ですが", r"一般的に", r"以下は", r"とはいえ",
        r"하지만", r"그러나", r"다만", r"다음은", r"일반적으로", r"그렇지만", r"보통",
    ),
)

# English function words: an answer that has none of them in its first few hundred characters may
# be in another language even when it is plain ASCII (Dutch, Swedish or Turkish without accents).
_ENGLISH = re.compile(r"\b(?:the|and|you|to|is|of|that|it|for|with|this|can|are|not)\b")


def may_be_foreign(low: str) -> bool:
    """Whether the (lower-cased) answer may be in a language other than English: fewer than three
    English function words in its first 600 characters (an English answer has dozens)."""
    found = 0
    for _ in _ENGLISH.finditer(low, 0, 600):
        found += 1
        if found == 3:
            return False
    return True
