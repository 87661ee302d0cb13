import { configure } from '@testing-library/react-native';

// The CI machine is 2 shared cores: waiting up to 10 s for a render is about load, not logic.
configure({ asyncUtilTimeout: 10000 });
