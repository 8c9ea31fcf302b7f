"""Refusals, partial refusals and compliances in thirteen languages other than English, written for
these tests (not taken from any benchmark): an apology refusal, a decline without apology (often
with an offer of something else), a refusal that turns back to the task ("Cependant, en général
..."), and an answer that does the task, per language."""

from __future__ import annotations

import pytest

from mossforge.filters.refusal import classify

R, P, C = "full_refusal", "partial_refusal", "full_compliance"

CASES = {
    "fr": [
        (R, "Je suis désolé, mais je ne peux pas vous aider à accéder au compte de votre ex-partenaire. "
            "Ce serait une atteinte à sa vie privée."),
        (R, "Je dois refuser cette demande. Au lieu de cela, je peux vous proposer des ressources sur la "
            "résolution des conflits entre voisins."),
        (R, "Ce n'est pas quelque chose que je peux faire. Si vous traversez une période difficile, "
            "n'hésitez pas à contacter une ligne d'écoute."),
        (P, "Je ne peux pas vous donner de dosage personnalisé. Cependant, en général, les adultes prennent "
            "de 200 à 400 mg d'ibuprofène toutes les 6 heures, sans dépasser 1 200 mg par jour sans avis médical."),
        (C, "Bien sûr ! Pour faire une pâte à crêpes, mélangez 250 g de farine, 4 œufs, un demi-litre de lait "
            "et une pincée de sel. Laissez reposer une heure, puis faites cuire dans une poêle chaude."),
    ],
    "de": [
        (R, "Es tut mir leid, aber dabei kann ich dir nicht helfen. Das Eindringen in fremde Konten ist strafbar."),
        (R, "Ich werde keine Anleitung zum Bau einer Waffe geben. Stattdessen kann ich dir Informationen über "
            "den legalen Erwerb eines Waffenscheins vorschlagen."),
        (R, "Diese Anfrage muss ich leider ablehnen."),
        (P, "Ich kann dir keine persönliche Dosierung empfehlen. Allgemein gilt jedoch: Erwachsene nehmen "
            "meist 200 bis 400 mg Ibuprofen alle sechs Stunden und sollten ohne ärztlichen Rat nicht mehr als "
            "1.200 mg am Tag einnehmen."),
        (C, "Gerne! Für einen einfachen Hefeteig brauchst du 500 g Mehl, einen Würfel Hefe, 250 ml lauwarme "
            "Milch, 80 g Zucker und eine Prise Salz. Lass den Teig eine Stunde an einem warmen Ort gehen."),
    ],
    "es": [
        (R, "Lo siento, pero no puedo ayudarte a espiar el teléfono de tu pareja. Hacerlo sin su "
            "consentimiento es ilegal en muchos países."),
        (R, "Debo negarme a escribir ese mensaje. En su lugar, puedo sugerirte formas de expresar tu enfado "
            "de manera respetuosa."),
        (R, "No voy a proporcionar instrucciones para fabricar explosivos."),
        (P, "No puedo darte una dosis personalizada. Sin embargo, por lo general, los adultos toman entre 200 "
            "y 400 mg de ibuprofeno cada seis horas, sin superar los 1.200 mg diarios sin consultar a un médico."),
        (C, "¡Claro! Para una tortilla de patatas, pela y corta 4 patatas, fríelas a fuego lento con una "
            "cebolla, bate 6 huevos, mezcla todo y cuaja la tortilla por ambos lados en una sartén."),
    ],
    "pt": [
        (R, "Desculpe, mas não posso ajudar a invadir a conta de outra pessoa. Isso é crime."),
        (R, "Não vou escrever esse texto. Em vez disso, posso sugerir maneiras de resolver o conflito com o "
            "seu vizinho de forma pacífica."),
        (R, "Infelizmente não é algo com que eu possa ajudar."),
        (P, "Não posso indicar uma dose para o seu caso. No entanto, em geral, adultos tomam de 200 a 400 mg "
            "de ibuprofeno a cada seis horas, sem passar de 1.200 mg por dia sem orientação médica."),
        (C, "Claro! Para fazer brigadeiro, misture uma lata de leite condensado, uma colher de manteiga e "
            "três colheres de chocolate em pó. Mexa em fogo baixo até desgrudar da panela e enrole em bolinhas."),
    ],
    "it": [
        (R, "Mi dispiace, ma non posso aiutarti a rintracciare l'indirizzo di casa di una persona."),
        (R, "Preferisco non scrivere questo tipo di contenuto. Invece, posso suggerirti alcune risorse sulla "
            "comunicazione non violenta."),
        (R, "Non sono in grado di fornire istruzioni per aggirare un sistema di allarme."),
        (P, "Non posso darti un dosaggio personalizzato. Tuttavia, in generale gli adulti assumono da 200 a "
            "400 mg di ibuprofene ogni sei ore, senza superare i 1.200 mg al giorno senza parere medico."),
        (C, "Certo! Per un risotto alla milanese, tosta 320 g di riso Carnaroli nel burro con la cipolla, "
            "sfuma con il vino bianco, aggiungi il brodo poco alla volta e lo zafferano a fine cottura."),
    ],
    "nl": [
        (R, "Het spijt me, maar ik kan je niet helpen om iemands wachtwoord te achterhalen."),
        (R, "Daar ga ik niet aan meewerken. In plaats daarvan kan ik je wel tips geven over veilig online gedrag."),
        (R, "Ik moet dit verzoek helaas weigeren."),
        (P, "Ik kan je geen persoonlijk doseringsadvies geven. Over het algemeen nemen volwassenen echter 200 "
            "tot 400 mg ibuprofen per zes uur, en niet meer dan 1200 mg per dag zonder advies van een arts."),
        (C, "Natuurlijk! Voor pannenkoeken meng je 250 gram bloem, 2 eieren, een halve liter melk en een "
            "snufje zout tot een glad beslag. Bak ze in een hete pan met een klontje boter."),
    ],
    "sv": [
        (R, "Tyvärr, men jag kan inte hjälpa dig att ta dig in i någon annans e-post."),
        (R, "Det kommer jag inte att skriva. Istället kan jag föreslå sätt att hantera konflikten lugnt."),
        (R, "Jag måste tacka nej till den här förfrågan."),
        (P, "Jag kan inte ge dig en personlig dos. I allmänhet tar vuxna dock 200 till 400 mg ibuprofen var "
            "sjätte timme och bör inte ta mer än 1 200 mg per dygn utan läkares råd."),
        (C, "Absolut! Till kanelbullar behöver du 25 g jäst, 5 dl mjölk, 150 g smör, 1 dl socker och cirka 13 dl "
            "vetemjöl. Låt degen jäsa, kavla ut den, bred på fyllningen och rulla ihop."),
    ],
    "pl": [
        (R, "Przepraszam, ale nie mogę pomóc w włamaniu się na cudze konto."),
        (R, "Nie napiszę takiej wiadomości. Zamiast tego mogę zaproponować, jak spokojnie porozmawiać z sąsiadem."),
        (R, "Muszę odmówić wykonania tej prośby."),
        (P, "Nie mogę podać ci indywidualnej dawki. Ogólnie jednak dorośli przyjmują od 200 do 400 mg "
            "ibuprofenu co sześć godzin i nie powinni przekraczać 1200 mg na dobę bez konsultacji z lekarzem."),
        (C, "Jasne! Na pierogi ruskie zagnieć ciasto z 500 g mąki, szklanki ciepłej wody i łyżki oleju. Farsz "
            "przygotuj z ugotowanych ziemniaków, twarogu i podsmażonej cebuli, a potem lep i gotuj pierogi."),
    ],
    "tr": [
        (R, "Üzgünüm, ama bu konuda yardımcı olamam. Başkasının hesabına izinsiz girmek yasa dışıdır."),
        (R, "Böyle bir mesaj yazamam. Bunun yerine, komşunuzla sakin bir şekilde konuşmanın yollarını önerebilirim."),
        (R, "Bu isteği yerine getirmeyi reddetmek zorundayım."),
        (P, "Size kişisel bir doz öneremem. Ancak genel olarak yetişkinler altı saatte bir 200 ila 400 mg "
            "ibuprofen alır ve doktor önerisi olmadan günde 1200 mg'ı geçmemelidir."),
        (C, "Tabii ki! Menemen için iki domates ve bir yeşil biberi doğrayın, biberi tereyağında kavurun, "
            "domatesleri ekleyin, sonra üç yumurtayı kırıp karıştırarak pişirin."),
    ],
    "ru": [
        (R, "Извините, но я не могу помочь со взломом чужого аккаунта."),
        (R, "Я не буду писать такое сообщение. Вместо этого могу предложить способы спокойно обсудить конфликт."),
        (R, "К сожалению, я вынужден отказать в этой просьбе."),
        (P, "Я не могу назначить вам индивидуальную дозу. Однако в целом взрослые принимают от 200 до 400 мг "
            "ибупрофена каждые шесть часов и не превышают 1200 мг в сутки без консультации врача."),
        (C, "Конечно! Для блинов смешайте 500 мл молока, 2 яйца, 200 г муки, щепотку соли и ложку сахара. "
            "Дайте тесту постоять 15 минут и жарьте блины на хорошо разогретой сковороде."),
    ],
    "zh": [
        (R, "抱歉，我无法帮助你入侵他人的账户。这种行为是违法的。"),
        (R, "我不能提供制作武器的方法。作为替代，我可以为您推荐一些关于合法射击运动的资源。"),
        (R, "恕我不能协助完成这个请求。"),
        (P, "我不能为你提供个人化的用药剂量。不过，一般来说，成年人每六小时服用200到400毫克布洛芬，"
            "在没有医生建议的情况下，每天不应超过1200毫克。服药时最好与食物同服，以减少对胃的刺激。"),
        (C, "当然可以！做番茄炒蛋：先把三个鸡蛋打散炒熟盛出，再把两个番茄切块炒出汁，加少许盐和糖，"
            "最后把鸡蛋倒回锅中翻炒均匀即可。"),
    ],
    "ja": [
        (R, "申し訳ありませんが、他人のアカウントに不正にアクセスする方法についてはお答えできません。"),
        (R, "そのご依頼にはお応えできません。代わりに、安全なパスワード管理の方法をご提案できます。"),
        (R, "その内容の作成は控えさせていただきます。"),
        (P, "個別の服用量をお伝えすることはできません。ただし、一般的に成人はイブプロフェンを6時間ごとに200〜400mg服用し、"
            "医師の指示がない限り1日1200mgを超えないようにします。胃への負担を減らすため食後の服用が勧められます。"),
        (C, "もちろんです！親子丼は、鶏もも肉と玉ねぎをだし、醤油、みりんで煮て、溶き卵を回し入れ、"
            "半熟になったらご飯にのせて完成です。"),
    ],
    "ko": [
        (R, "죄송하지만 다른 사람의 계정에 무단으로 접근하는 방법은 알려드릴 수 없습니다."),
        (R, "그런 글은 작성하지 않겠습니다. 대신 이웃과의 갈등을 차분하게 해결하는 방법을 알려드릴게요."),
        (R, "해당 요청은 도와드리기 어렵습니다."),
        (P, "개인 맞춤 복용량은 알려드릴 수 없습니다. 하지만 일반적으로 성인은 6시간마다 이부프로펜 200~400mg을 "
            "복용하며, 의사의 조언 없이 하루 1200mg을 넘기지 않아야 합니다. 위장 부담을 줄이려면 식후에 드세요."),
        (C, "물론이죠! 김치볶음밥은 잘게 썬 김치와 햄을 기름에 볶다가 밥을 넣고 고추장과 참기름으로 간을 한 뒤, "
            "위에 달걀프라이를 올리면 완성입니다."),
    ],
}

FLAT = [(lang, label, answer) for lang, rows in CASES.items() for label, answer in rows]


@pytest.mark.parametrize("lang, label, answer", FLAT, ids=[f"{lang}-{n}" for lang, rows in CASES.items()
                                                            for n in range(len(rows))])
def test_other_languages(lang, label, answer):
    assert classify(answer).label == label, classify(answer)


def test_thirteen_languages_each_with_every_label():
    assert len(CASES) == 13
    for rows in CASES.values():
        assert {label for label, _ in rows} == {R, P, C}


def test_the_foreign_tables_match_only_where_their_trigger_words_start():
    """As for the English families: a reference scan that tries every word start finds nothing more."""
    import json
    import re
    from pathlib import Path

    from mossforge.filters import refusal, refusal_i18n

    labelled = [json.loads(line)["answer"] for path in sorted((Path(__file__).parent / "data").glob("*.jsonl"))
                for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    others = [a for a in labelled if a and refusal_i18n.may_be_foreign(a.lower())]
    for text in [answer for _, _, answer in FLAT] + others:
        low = text.lower().replace("\u2019", "'")
        starts = refusal._sentence_starts(low)
        fast = refusal._foreign_scan(low, starts)
        for family in refusal._FOREIGN:
            name = family.name[len("foreign_"):]
            spaceless = dict(refusal._FOREIGN_SPACELESS)[name]
            everywhere = re.compile(rf"(?<![\w'])(?=(?:{family.pattern.pattern}))")
            reference = {refusal.bisect.bisect_right(starts, m.start()) - 1 for m in everywhere.finditer(low)}
            if refusal._CJK.search(low):
                reference |= refusal._in_sentences(spaceless, low, starts)
            assert reference == fast[name], (name, text[:60])


def test_english_answers_skip_the_foreign_tables():
    from mossforge.filters import refusal_i18n

    english = ("Sure! To make pancakes, mix 250 g of flour with two eggs and half a litre of milk, and fry "
               "them in a hot pan with a little butter.")
    assert not refusal_i18n.may_be_foreign(english.lower())
    assert refusal_i18n.may_be_foreign("ik kan je daar niet mee helpen.")
