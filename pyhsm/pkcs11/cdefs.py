"""Our PKCS#11 C declarations: the one source for the cffi extension and for the C loader's header.

Written from the PKCS#11 v3.0 specification (types, struct layouts and function-list order); CK_ULONG is
`unsigned long` as on every Unix ABI.
"""

from __future__ import annotations

TYPES = """
typedef unsigned char CK_BYTE;
typedef CK_BYTE CK_CHAR;
typedef CK_BYTE CK_UTF8CHAR;
typedef CK_BYTE CK_BBOOL;
typedef unsigned long CK_ULONG;
typedef long CK_LONG;
typedef CK_ULONG CK_FLAGS;
typedef CK_ULONG CK_RV;
typedef CK_ULONG CK_SLOT_ID;
typedef CK_ULONG CK_SESSION_HANDLE;
typedef CK_ULONG CK_OBJECT_HANDLE;
typedef CK_ULONG CK_USER_TYPE;
typedef CK_ULONG CK_STATE;
typedef CK_ULONG CK_ATTRIBUTE_TYPE;
typedef CK_ULONG CK_MECHANISM_TYPE;
typedef CK_ULONG CK_NOTIFICATION;
typedef void *CK_VOID_PTR;
typedef CK_VOID_PTR *CK_VOID_PTR_PTR;
typedef CK_ULONG *CK_ULONG_PTR;
typedef CK_BYTE *CK_BYTE_PTR;
typedef CK_UTF8CHAR *CK_UTF8CHAR_PTR;
typedef CK_SLOT_ID *CK_SLOT_ID_PTR;
typedef CK_SESSION_HANDLE *CK_SESSION_HANDLE_PTR;
typedef CK_OBJECT_HANDLE *CK_OBJECT_HANDLE_PTR;
typedef CK_MECHANISM_TYPE *CK_MECHANISM_TYPE_PTR;

typedef struct CK_VERSION { CK_BYTE major; CK_BYTE minor; } CK_VERSION;
typedef struct CK_INFO {
    CK_VERSION cryptokiVersion; CK_UTF8CHAR manufacturerID[32]; CK_FLAGS flags;
    CK_UTF8CHAR libraryDescription[32]; CK_VERSION libraryVersion;
} CK_INFO;
typedef struct CK_SLOT_INFO {
    CK_UTF8CHAR slotDescription[64]; CK_UTF8CHAR manufacturerID[32]; CK_FLAGS flags;
    CK_VERSION hardwareVersion; CK_VERSION firmwareVersion;
} CK_SLOT_INFO;
typedef struct CK_TOKEN_INFO {
    CK_UTF8CHAR label[32]; CK_UTF8CHAR manufacturerID[32]; CK_UTF8CHAR model[16]; CK_CHAR serialNumber[16];
    CK_FLAGS flags; CK_ULONG ulMaxSessionCount; CK_ULONG ulSessionCount; CK_ULONG ulMaxRwSessionCount;
    CK_ULONG ulRwSessionCount; CK_ULONG ulMaxPinLen; CK_ULONG ulMinPinLen; CK_ULONG ulTotalPublicMemory;
    CK_ULONG ulFreePublicMemory; CK_ULONG ulTotalPrivateMemory; CK_ULONG ulFreePrivateMemory;
    CK_VERSION hardwareVersion; CK_VERSION firmwareVersion; CK_CHAR utcTime[16];
} CK_TOKEN_INFO;
typedef struct CK_SESSION_INFO { CK_SLOT_ID slotID; CK_STATE state; CK_FLAGS flags; CK_ULONG ulDeviceError; }
    CK_SESSION_INFO;
typedef struct CK_ATTRIBUTE { CK_ATTRIBUTE_TYPE type; CK_VOID_PTR pValue; CK_ULONG ulValueLen; } CK_ATTRIBUTE;
typedef struct CK_MECHANISM { CK_MECHANISM_TYPE mechanism; CK_VOID_PTR pParameter; CK_ULONG ulParameterLen; }
    CK_MECHANISM;
typedef struct CK_MECHANISM_INFO { CK_ULONG ulMinKeySize; CK_ULONG ulMaxKeySize; CK_FLAGS flags; }
    CK_MECHANISM_INFO;
typedef CK_ATTRIBUTE *CK_ATTRIBUTE_PTR;
typedef CK_MECHANISM *CK_MECHANISM_PTR;
typedef CK_INFO *CK_INFO_PTR;
typedef CK_SLOT_INFO *CK_SLOT_INFO_PTR;
typedef CK_TOKEN_INFO *CK_TOKEN_INFO_PTR;
typedef CK_SESSION_INFO *CK_SESSION_INFO_PTR;
typedef CK_MECHANISM_INFO *CK_MECHANISM_INFO_PTR;
typedef CK_VERSION *CK_VERSION_PTR;
typedef CK_RV (*CK_NOTIFY)(CK_SESSION_HANDLE, CK_NOTIFICATION, CK_VOID_PTR);
typedef CK_RV (*CK_CREATEMUTEX)(CK_VOID_PTR_PTR);
typedef CK_RV (*CK_DESTROYMUTEX)(CK_VOID_PTR);
typedef CK_RV (*CK_LOCKMUTEX)(CK_VOID_PTR);
typedef CK_RV (*CK_UNLOCKMUTEX)(CK_VOID_PTR);
typedef struct CK_C_INITIALIZE_ARGS {
    CK_CREATEMUTEX CreateMutex; CK_DESTROYMUTEX DestroyMutex; CK_LOCKMUTEX LockMutex;
    CK_UNLOCKMUTEX UnlockMutex; CK_FLAGS flags; CK_VOID_PTR pReserved;
} CK_C_INITIALIZE_ARGS;
typedef struct CK_RSA_PKCS_OAEP_PARAMS {
    CK_MECHANISM_TYPE hashAlg; CK_ULONG mgf; CK_ULONG source; CK_VOID_PTR pSourceData; CK_ULONG ulSourceDataLen;
} CK_RSA_PKCS_OAEP_PARAMS;
typedef struct CK_RSA_PKCS_PSS_PARAMS { CK_MECHANISM_TYPE hashAlg; CK_ULONG mgf; CK_ULONG sLen; }
    CK_RSA_PKCS_PSS_PARAMS;
typedef struct CK_GCM_PARAMS {
    CK_BYTE_PTR pIv; CK_ULONG ulIvLen; CK_ULONG ulIvBits; CK_BYTE_PTR pAAD; CK_ULONG ulAADLen; CK_ULONG ulTagBits;
} CK_GCM_PARAMS;
typedef struct CK_AES_CTR_PARAMS { CK_ULONG ulCounterBits; CK_BYTE cb[16]; } CK_AES_CTR_PARAMS;
typedef struct CK_ECDH1_DERIVE_PARAMS {
    CK_ULONG kdf; CK_ULONG ulSharedDataLen; CK_BYTE_PTR pSharedData; CK_ULONG ulPublicDataLen;
    CK_BYTE_PTR pPublicData;
} CK_ECDH1_DERIVE_PARAMS;
typedef struct CK_KEY_DERIVATION_STRING_DATA { CK_BYTE_PTR pData; CK_ULONG ulLen; } CK_KEY_DERIVATION_STRING_DATA;
typedef struct CK_AES_CBC_ENCRYPT_DATA_PARAMS { CK_BYTE iv[16]; CK_BYTE_PTR pData; CK_ULONG length; }
    CK_AES_CBC_ENCRYPT_DATA_PARAMS;
typedef struct CK_RSA_AES_KEY_WRAP_PARAMS { CK_ULONG ulAESKeyBits; CK_RSA_PKCS_OAEP_PARAMS *pOAEPParams; }
    CK_RSA_AES_KEY_WRAP_PARAMS;
typedef struct CK_CCM_PARAMS {
    CK_ULONG ulDataLen; CK_BYTE_PTR pNonce; CK_ULONG ulNonceLen; CK_BYTE_PTR pAAD; CK_ULONG ulAADLen; CK_ULONG ulMACLen;
} CK_CCM_PARAMS;
typedef struct CK_EDDSA_PARAMS { CK_BBOOL phFlag; CK_ULONG ulContextDataLen; CK_BYTE_PTR pContextData; }
    CK_EDDSA_PARAMS;
typedef struct CK_HKDF_PARAMS {
    CK_BBOOL bExtract; CK_BBOOL bExpand; CK_MECHANISM_TYPE prfHashMechanism; CK_ULONG ulSaltType;
    CK_BYTE_PTR pSalt; CK_ULONG ulSaltLen; CK_OBJECT_HANDLE hSaltKey; CK_BYTE_PTR pInfo; CK_ULONG ulInfoLen;
} CK_HKDF_PARAMS;
typedef struct CK_PRF_DATA_PARAM { CK_ULONG type; CK_VOID_PTR pValue; CK_ULONG ulValueLen; } CK_PRF_DATA_PARAM;
typedef struct CK_SP800_108_COUNTER_FORMAT { CK_BBOOL bLittleEndian; CK_ULONG ulWidthInBits; }
    CK_SP800_108_COUNTER_FORMAT;
typedef struct CK_SP800_108_DKM_LENGTH_FORMAT {
    CK_ULONG dkmLengthMethod; CK_BBOOL bLittleEndian; CK_ULONG ulWidthInBits;
} CK_SP800_108_DKM_LENGTH_FORMAT;
typedef struct CK_DERIVED_KEY { CK_ATTRIBUTE_PTR pTemplate; CK_ULONG ulAttributeCount; CK_OBJECT_HANDLE_PTR phKey; }
    CK_DERIVED_KEY;
typedef struct CK_SP800_108_KDF_PARAMS {
    CK_MECHANISM_TYPE prfType; CK_ULONG ulNumberOfDataParams; CK_PRF_DATA_PARAM *pDataParams;
    CK_ULONG ulAdditionalDerivedKeys; CK_DERIVED_KEY *pAdditionalDerivedKeys;
} CK_SP800_108_KDF_PARAMS;
"""

# (name, parameter list) in function-list order: 68 of v2.40, then the 24 added by v3.0.
_H = "CK_SESSION_HANDLE hSession"
FUNCTIONS: list[tuple[str, str]] = [
    ("C_Initialize", "CK_VOID_PTR pInitArgs"),
    ("C_Finalize", "CK_VOID_PTR pReserved"),
    ("C_GetInfo", "CK_INFO_PTR pInfo"),
    ("C_GetFunctionList", "CK_VOID_PTR ppFunctionList"),
    ("C_GetSlotList", "CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount"),
    ("C_GetSlotInfo", "CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo"),
    ("C_GetTokenInfo", "CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo"),
    ("C_GetMechanismList", "CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount"),
    ("C_GetMechanismInfo", "CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo"),
    ("C_InitToken", "CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel"),
    ("C_InitPIN", f"{_H}, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen"),
    ("C_SetPIN", f"{_H}, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen"),
    ("C_OpenSession", "CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify, "
                      "CK_SESSION_HANDLE_PTR phSession"),
    ("C_CloseSession", _H),
    ("C_CloseAllSessions", "CK_SLOT_ID slotID"),
    ("C_GetSessionInfo", f"{_H}, CK_SESSION_INFO_PTR pInfo"),
    ("C_GetOperationState", f"{_H}, CK_BYTE_PTR pOperationState, CK_ULONG_PTR pulOperationStateLen"),
    ("C_SetOperationState", f"{_H}, CK_BYTE_PTR pOperationState, CK_ULONG ulOperationStateLen, "
                            "CK_OBJECT_HANDLE hEncryptionKey, CK_OBJECT_HANDLE hAuthenticationKey"),
    ("C_Login", f"{_H}, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen"),
    ("C_Logout", _H),
    ("C_CreateObject", f"{_H}, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject"),
    ("C_CopyObject", f"{_H}, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, "
                     "CK_OBJECT_HANDLE_PTR phNewObject"),
    ("C_DestroyObject", f"{_H}, CK_OBJECT_HANDLE hObject"),
    ("C_GetObjectSize", f"{_H}, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize"),
    ("C_GetAttributeValue", f"{_H}, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount"),
    ("C_SetAttributeValue", f"{_H}, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount"),
    ("C_FindObjectsInit", f"{_H}, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount"),
    ("C_FindObjects", f"{_H}, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount, "
                      "CK_ULONG_PTR pulObjectCount"),
    ("C_FindObjectsFinal", _H),
    ("C_EncryptInit", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey"),
    ("C_Encrypt", f"{_H}, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pEncryptedData, "
                  "CK_ULONG_PTR pulEncryptedDataLen"),
    ("C_EncryptUpdate", f"{_H}, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart, "
                        "CK_ULONG_PTR pulEncryptedPartLen"),
    ("C_EncryptFinal", f"{_H}, CK_BYTE_PTR pLastEncryptedPart, CK_ULONG_PTR pulLastEncryptedPartLen"),
    ("C_DecryptInit", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey"),
    ("C_Decrypt", f"{_H}, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen, CK_BYTE_PTR pData, "
                  "CK_ULONG_PTR pulDataLen"),
    ("C_DecryptUpdate", f"{_H}, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, "
                        "CK_ULONG_PTR pulPartLen"),
    ("C_DecryptFinal", f"{_H}, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen"),
    ("C_DigestInit", f"{_H}, CK_MECHANISM_PTR pMechanism"),
    ("C_Digest", f"{_H}, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen"),
    ("C_DigestUpdate", f"{_H}, CK_BYTE_PTR pPart, CK_ULONG ulPartLen"),
    ("C_DigestKey", f"{_H}, CK_OBJECT_HANDLE hKey"),
    ("C_DigestFinal", f"{_H}, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen"),
    ("C_SignInit", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey"),
    ("C_Sign", f"{_H}, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, "
               "CK_ULONG_PTR pulSignatureLen"),
    ("C_SignUpdate", f"{_H}, CK_BYTE_PTR pPart, CK_ULONG ulPartLen"),
    ("C_SignFinal", f"{_H}, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen"),
    ("C_SignRecoverInit", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey"),
    ("C_SignRecover", f"{_H}, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, "
                      "CK_ULONG_PTR pulSignatureLen"),
    ("C_VerifyInit", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey"),
    ("C_Verify", f"{_H}, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen"),
    ("C_VerifyUpdate", f"{_H}, CK_BYTE_PTR pPart, CK_ULONG ulPartLen"),
    ("C_VerifyFinal", f"{_H}, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen"),
    ("C_VerifyRecoverInit", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey"),
    ("C_VerifyRecover", f"{_H}, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen, CK_BYTE_PTR pData, "
                        "CK_ULONG_PTR pulDataLen"),
    ("C_DigestEncryptUpdate", f"{_H}, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart, "
                              "CK_ULONG_PTR pulEncryptedPartLen"),
    ("C_DecryptDigestUpdate", f"{_H}, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, "
                              "CK_ULONG_PTR pulPartLen"),
    ("C_SignEncryptUpdate", f"{_H}, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart, "
                            "CK_ULONG_PTR pulEncryptedPartLen"),
    ("C_DecryptVerifyUpdate", f"{_H}, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, "
                              "CK_ULONG_PTR pulPartLen"),
    ("C_GenerateKey", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, "
                      "CK_OBJECT_HANDLE_PTR phKey"),
    ("C_GenerateKeyPair", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pPublicKeyTemplate, "
                          "CK_ULONG ulPublicKeyAttributeCount, CK_ATTRIBUTE_PTR pPrivateKeyTemplate, "
                          "CK_ULONG ulPrivateKeyAttributeCount, CK_OBJECT_HANDLE_PTR phPublicKey, "
                          "CK_OBJECT_HANDLE_PTR phPrivateKey"),
    ("C_WrapKey", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey, "
                  "CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen"),
    ("C_UnwrapKey", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, "
                    "CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, "
                    "CK_OBJECT_HANDLE_PTR phKey"),
    ("C_DeriveKey", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey, CK_ATTRIBUTE_PTR pTemplate, "
                    "CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey"),
    ("C_SeedRandom", f"{_H}, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen"),
    ("C_GenerateRandom", f"{_H}, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen"),
    ("C_GetFunctionStatus", _H),
    ("C_CancelFunction", _H),
    ("C_WaitForSlotEvent", "CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved"),
    # ---- v3.0 ----
    ("C_GetInterfaceList", "CK_VOID_PTR pInterfacesList, CK_ULONG_PTR pulCount"),
    ("C_GetInterface", "CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion, CK_VOID_PTR ppInterface, "
                       "CK_FLAGS flags"),
    ("C_LoginUser", f"{_H}, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, "
                    "CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen"),
    ("C_SessionCancel", f"{_H}, CK_FLAGS flags"),
    ("C_MessageEncryptInit", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey"),
    ("C_EncryptMessage", f"{_H}, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData, "
                         "CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pPlaintext, CK_ULONG ulPlaintextLen, "
                         "CK_BYTE_PTR pCiphertext, CK_ULONG_PTR pulCiphertextLen"),
    ("C_EncryptMessageBegin", f"{_H}, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, "
                              "CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen"),
    ("C_EncryptMessageNext", f"{_H}, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pPlaintextPart, "
                             "CK_ULONG ulPlaintextPartLen, CK_BYTE_PTR pCiphertextPart, "
                             "CK_ULONG_PTR pulCiphertextPartLen, CK_FLAGS flags"),
    ("C_MessageEncryptFinal", _H),
    ("C_MessageDecryptInit", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey"),
    ("C_DecryptMessage", f"{_H}, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData, "
                         "CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pCiphertext, CK_ULONG ulCiphertextLen, "
                         "CK_BYTE_PTR pPlaintext, CK_ULONG_PTR pulPlaintextLen"),
    ("C_DecryptMessageBegin", f"{_H}, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, "
                              "CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen"),
    ("C_DecryptMessageNext", f"{_H}, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, "
                             "CK_BYTE_PTR pCiphertextPart, CK_ULONG ulCiphertextPartLen, "
                             "CK_BYTE_PTR pPlaintextPart, CK_ULONG_PTR pulPlaintextPartLen, CK_FLAGS flags"),
    ("C_MessageDecryptFinal", _H),
    ("C_MessageSignInit", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey"),
    ("C_SignMessage", f"{_H}, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData, "
                      "CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen"),
    ("C_SignMessageBegin", f"{_H}, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen"),
    ("C_SignMessageNext", f"{_H}, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData, "
                          "CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen"),
    ("C_MessageSignFinal", _H),
    ("C_MessageVerifyInit", f"{_H}, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey"),
    ("C_VerifyMessage", f"{_H}, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData, "
                        "CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen"),
    ("C_VerifyMessageBegin", f"{_H}, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen"),
    ("C_VerifyMessageNext", f"{_H}, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData, "
                            "CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen"),
    ("C_MessageVerifyFinal", _H),
]
V2_COUNT = 68
FUNCTION_NAMES = [name for name, _ in FUNCTIONS]

# Answered by the C loader itself (they need no Python): their inner-table slots are never called.
LOADER_ONLY = ("C_GetFunctionList", "C_GetInterfaceList", "C_GetInterface")


def function_list_struct(name: str, count: int) -> str:
    fields = "\n".join(f"    CK_RV (*{n})({args});" for n, args in FUNCTIONS[:count])
    return f"typedef struct {name} {{\n    CK_VERSION version;\n{fields}\n}} {name};\n"


def header() -> str:
    """Types plus both function-list structs: what C code of ours includes."""
    return (TYPES + function_list_struct("CK_FUNCTION_LIST", V2_COUNT)
            + function_list_struct("CK_FUNCTION_LIST_3_0", len(FUNCTIONS))
            + "typedef struct CK_INTERFACE { CK_CHAR *pInterfaceName; CK_VOID_PTR pFunctionList; CK_FLAGS flags; }"
              " CK_INTERFACE;\n")


def arg_names(args: str) -> list[str]:
    return [a.split()[-1] for a in args.split(",")]


def constants_header(constants: object) -> str:
    """ck_constants.h: every CK*_ constant of pyhsm.constants as a C macro, so C code never restates a number."""
    defines = [f"#define {name} 0x{value:X}UL" for name, value in sorted(vars(constants).items())
               if name.startswith("CK") and isinstance(value, int) and not isinstance(value, bool) and value >= 0]
    return "#pragma once\n" + "\n".join(defines) + "\n"


def generated_header() -> str:
    """pyhsm_gen.h for C code of ours (the loader, the test host): types plus X-macro function lists."""
    local_only = {"C_Initialize", "C_Finalize", "C_GetInfo", *LOADER_ONLY}

    def x_list(macro: str, functions: list[tuple[str, str]]) -> str:
        rows = [f"    X({n}, ({a}), ({', '.join(arg_names(a))}))" for n, a in functions]
        return f"#define {macro}(X) \\\n" + " \\\n".join(rows) + "\n"

    return ("/* generated from pyhsm/pkcs11/cdefs.py */\n#pragma once\n" + header()
            + x_list("PYHSM_V2_FUNCTIONS", FUNCTIONS[:V2_COUNT])
            + x_list("PYHSM_V3_FUNCTIONS", FUNCTIONS[V2_COUNT:])
            + x_list("PYHSM_FORWARDED", [f for f in FUNCTIONS if f[0] not in local_only]))
